"""The alert pipeline (INTRA-2, ALERT-1, INC-1).

State changes in the SQL state store (probe targets down/up, agents silent, devices not
pollable, links down, unacknowledged topology changes, ...) become alerts that are
deduplicated, flap-suppressed, silenced in maintenance windows, routed by responsibility
(PD LAN -> the PD's Tier 1, WAN/intranet/Pusat Data -> Dinas Tier 2), escalated to Tier 2 when
not acknowledged, and delivered through a durable queue (email, Telegram, webhook, WhatsApp).

- :mod:`collector.alerts.sources`: one module per kind of fault (the extension point)
- :mod:`collector.alerts.engine`: evaluation, dedup, flapping, maintenance, routing, escalation
- :mod:`collector.alerts.delivery`: the notification queue workers
- :mod:`collector.alerts.channels`: one module per channel
- :mod:`collector.alerts.messages`: Bahasa Indonesia / English texts
- :mod:`collector.alerts.digest`: the daily digest per recipient
"""
