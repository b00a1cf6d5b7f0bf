"""InfluxDB transports: write line protocol in gzip'd batches, query with InfluxQL.

- ``v1``: the InfluxDB 1.x HTTP API (``/write``, ``/query``), e.g. Debian's influxdb 1.6.
- ``v2``: influxdb-client's write API (``/api/v2/write``) for InfluxDB 2.x, 3.x and 1.8+;
  its queries go to the v1-compatible ``/query`` endpoint, which all of them answer.
"""

from __future__ import annotations

import gzip
from typing import Any, Protocol

import httpx

from collector.config import InfluxCfg


class InfluxError(Exception):
    """A write or query failed. ``permanent`` means retrying the same data cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Writer(Protocol):
    def write(self, lines: list[str]) -> None: ...
    def close(self) -> None: ...


def _classify(resp: httpx.Response) -> InfluxError:
    body = resp.text[:500]
    # 400 "partial write": InfluxDB stored the good points and refused the rest for good;
    # retrying the batch would block the outbox forever, so it counts as permanent
    permanent = resp.status_code == 400 and "database not found" not in body
    return InfluxError(f"InfluxDB HTTP {resp.status_code}: {body}", permanent=permanent)


class V1Client:
    """InfluxDB 1.x HTTP API (also serves queries for the v2 transport)."""

    def __init__(self, cfg: InfluxCfg) -> None:
        self.cfg = cfg
        auth: tuple[str, str] | None = None
        headers: dict[str, str] = {}
        if cfg.api == "v1" and cfg.username:
            auth = (cfg.username, cfg.password() or "")
        token = cfg.token() if cfg.api == "v2" else None
        if token:
            headers["Authorization"] = f"Token {token}"
        self.db = cfg.database if cfg.api == "v1" else cfg.bucket
        self.http = httpx.Client(base_url=str(cfg.url).rstrip("/"), auth=auth, headers=headers,
                                 timeout=cfg.timeout_s)

    def write(self, lines: list[str]) -> None:
        params = {"db": self.db, "precision": "ns"}
        if self.cfg.retention_policy:
            params["rp"] = self.cfg.retention_policy
        body = gzip.compress("\n".join(lines).encode(), compresslevel=1)
        try:
            resp = self.http.post("/write", params=params, content=body,
                                  headers={"Content-Encoding": "gzip",
                                           "Content-Type": "text/plain; charset=utf-8"})
        except httpx.HTTPError as e:
            raise InfluxError(f"InfluxDB unreachable: {type(e).__name__}: {e}") from e
        if resp.status_code == 404 and "database not found" in resp.text \
                and self.cfg.create_database:
            self.create_database()
            return self.write(lines)
        if resp.status_code != 204:
            raise _classify(resp)
        return None

    def create_database(self) -> None:
        name = self.db.replace('"', '\\"')
        self.query(f'CREATE DATABASE "{name}"', post=True)

    def query(self, q: str, *, post: bool = False) -> list[dict[str, Any]]:
        """Run InfluxQL; return the series of the first statement (empty list if none)."""
        params = {"db": self.db, "q": q, "epoch": "ns"}
        try:
            resp = (self.http.post("/query", data=params) if post
                    else self.http.get("/query", params=params))
        except httpx.HTTPError as e:
            raise InfluxError(f"InfluxDB unreachable: {type(e).__name__}: {e}") from e
        if resp.status_code != 200:
            raise _classify(resp)
        data = resp.json()
        results = data.get("results") or [{}]
        if "error" in results[0]:
            raise InfluxError(f"InfluxQL error: {results[0]['error']}", permanent=True)
        series: list[dict[str, Any]] = results[0].get("series", [])
        return series

    def ping(self) -> bool:
        try:
            return self.http.get("/ping").status_code == 204
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.http.close()


class V2Writer:
    """influxdb-client's synchronous write API against ``/api/v2/write`` (gzip enabled)."""

    def __init__(self, cfg: InfluxCfg) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.cfg = cfg
        self.client = InfluxDBClient(url=str(cfg.url).rstrip("/"), token=cfg.token() or "",
                                     org=cfg.org, timeout=int(cfg.timeout_s * 1000),
                                     enable_gzip=True)
        self.api = self.client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: list[str]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            self.api.write(bucket=self.cfg.bucket, org=self.cfg.org, record=lines,
                           write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except ApiException as e:
            raise InfluxError(f"InfluxDB HTTP {e.status}: {str(e.body)[:500]}",
                              permanent=e.status == 400) from e
        except (Urllib3Error, OSError) as e:
            raise InfluxError(f"InfluxDB unreachable: {type(e).__name__}: {e}") from e

    def close(self) -> None:
        self.client.close()


def make_writer(cfg: InfluxCfg) -> Writer:
    return V2Writer(cfg) if cfg.api == "v2" else V1Client(cfg)


def quote_literal(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
