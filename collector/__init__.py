"""spbe-collector: authenticates agents, stores state in SQL and metrics in InfluxDB."""

__version__ = "0.1.0"
