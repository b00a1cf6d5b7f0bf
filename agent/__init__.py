"""spbe-agent: runs on a PD office gateway or a data-centre host and reports to the collector."""

__version__ = "0.1.0"
