"""SQL schema (SQLAlchemy Core) and engine set-up. SQLite by default, PostgreSQL by URL.

The schema is created and upgraded by Alembic migrations (``collector/migrations``); the
tables below mirror the latest migration and are what the data-access layer queries.
Times are stored as UTC epoch seconds (double precision) so that both back-ends agree.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url

metadata = MetaData()

pds = Table(
    "pds", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("created_at", Double, nullable=False),
)

agents = Table(
    "agents", metadata,
    Column("id", Integer, primary_key=True),
    Column("agent_id", String(64), nullable=False, unique=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("last_seen_at", Double),
    Column("last_report_id", String(36)),
    Column("agent_version", String(64)),
    Column("clock_skew_s", Double),
    Column("spool_pending", Integer),
    Column("spool_dropped_total", Integer),
    Column("spool_rejected_total", Integer),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("pd_id", Integer, ForeignKey("pds.id")),
    Column("created_at", Double, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

reports = Table(
    "reports", metadata,
    Column("report_id", String(36), primary_key=True),
    Column("agent_pk", Integer, ForeignKey("agents.id"), nullable=False),
    Column("received_at", Double, nullable=False),
    Column("sent_at", Double, nullable=False),
    Column("observations", Integer, nullable=False),
    Column("points", Integer, nullable=False),
)

hosts = Table(
    "hosts", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("agent_pk", Integer, ForeignKey("agents.id"), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("os", String(255), nullable=False),
    Column("kernel", String(255), nullable=False),
    Column("uptime_s", Double, nullable=False),
    Column("server_mode", Boolean, nullable=False),
    Column("addresses", JSON, nullable=False),
    Column("routes", JSON, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    UniqueConstraint("agent_pk", "hostname", name="uq_hosts_agent_hostname"),
)

probe_targets = Table(
    "probe_targets", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("agent_pk", Integer, ForeignKey("agents.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("address", Text, nullable=False),
    Column("state", String(8), nullable=False),
    Column("state_since", Double, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_checked", Double, nullable=False),
    Column("last_rtt_ms", Double),
    Column("last_error", Text),
    # addresses the host name last resolved to (kept when a later probe could not resolve)
    Column("resolved", JSON(none_as_null=True)),
    Column("resolved_at", Double),
    UniqueConstraint("agent_pk", "name", name="uq_probe_targets_agent_name"),
)

# counters that survive restarts; "outbox_written": lines InfluxDB accepted, ever
collector_counters = Table(
    "collector_counters", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

state_transitions = Table(
    "state_transitions", metadata,
    Column("id", Integer, primary_key=True),
    Column("target_id", Integer, ForeignKey("probe_targets.id"), nullable=False, index=True),
    Column("state", String(8), nullable=False),
    Column("at", Double, nullable=False),
    Column("report_id", String(36), nullable=False),
    Index("ix_state_transitions_target_at", "target_id", "at"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("line", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

outbox_failed = Table(
    "outbox_failed", metadata,
    Column("id", Integer, primary_key=True),
    Column("line", Text, nullable=False),
    Column("failed_at", Double, nullable=False),
    Column("error", Text, nullable=False),
)

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
            # let SQLAlchemy, not pysqlite, manage transactions, so SAVEPOINTs work
            # (SQLAlchemy's documented recipe for pysqlite)
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # 2xx only after a durable commit
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest migration (idempotent)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


# Tables defined in sibling modules register themselves on ``metadata`` when imported.
import collector.db_alerts  # noqa: E402
import collector.db_compliance  # noqa: E402
import collector.db_inventory  # noqa: E402, F401
