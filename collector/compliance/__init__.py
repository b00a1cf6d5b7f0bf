"""The compliance engine: region profiles and the site model (``profile``), one rule per
obligation (``rules/``), evaluation and the violation lifecycle (``engine``), texts in Bahasa
Indonesia and English (``messages``). See the README section "Compliance"."""
