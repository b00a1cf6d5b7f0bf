"""LAN diagram of a PD as SVG, drawn by Graphviz ``dot`` (Debian package ``graphviz``).

The DOT source is generated here from a topology graph (``Topology.to_dict``). Device strings
come from the network and are never trusted: node and edge identifiers are generated
(``n0``, ``n1``, ...), and every text goes into an HTML-like label after HTML escaping,
removal of control characters and doubling of backslashes, so no quote, backslash, ``<`` or
``&`` in a device name can change the DOT structure or inject markup into the SVG.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

DOT_TIMEOUT_S = 60.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

TEXTS: dict[str, dict[str, str]] = {
    "id": {
        "title": "Diagram Jaringan LAN", "date": "Tanggal", "source":
        "Sumber: penemuan otomatis spbe-monitor (LLDP, ARP, tabel routing)",
        "legend": "Keterangan", "managed": "Perangkat terpantau",
        "unmanaged": "Tetangga LLDP, belum terdaftar", "external": "Perangkat PD lain / pusat data",
        "uplink": "Intranet (next hop rute default)", "hosts": "Host dari tabel ARP",
        "lldp": "Link LLDP", "uplink_link": "Uplink ke intranet", "hosts_link": "Port akses",
        "unmanaged_tag": "belum terdaftar", "hosts_label": "host", "baseline":
        "Baseline disetujui", "no_baseline": "Belum ada baseline yang disetujui",
        "next_hop": "next hop",
    },
    "en": {
        "title": "LAN Diagram", "date": "Date", "source":
        "Source: spbe-monitor automatic discovery (LLDP, ARP, routing table)",
        "legend": "Legend", "managed": "Monitored device",
        "unmanaged": "LLDP neighbour, not registered", "external": "Other PD / data centre device",
        "uplink": "Intranet (default route next hop)", "hosts": "Hosts from the ARP table",
        "lldp": "LLDP link", "uplink_link": "Uplink to the intranet", "hosts_link": "Access port",
        "unmanaged_tag": "not registered", "hosts_label": "hosts", "baseline":
        "Baseline approved", "no_baseline": "No approved baseline yet", "next_hop": "next hop",
    },
}

_NODE_FILL = {"managed": "#dbeafe", "unmanaged": "#fef3c7", "external": "#e5e7eb",
              "uplink": "#dcfce7", "hosts": "#f9fafb"}
_NODE_BORDER = {"managed": "solid", "unmanaged": "dashed", "external": "solid",
                "uplink": "rounded", "hosts": "dotted"}
_EDGE_STYLE = {"lldp": 'color="#1f2937" penwidth=1.5',
               "uplink": 'color="#15803d" penwidth=3',
               "hosts": 'color="#6b7280" style=dashed'}


class DiagramError(Exception):
    """Rendering failed; the message is safe to show."""


class DiagramUnavailable(DiagramError):
    """Graphviz ``dot`` is not installed."""


def esc(value: object) -> str:
    """Text for an HTML-like DOT label: control characters dropped, markup escaped, and
    backslashes doubled (Graphviz expands ``\\N``, ``\\G``... even inside HTML labels)."""
    return html.escape(_CONTROL.sub(" ", str(value)), quote=True).replace("\\", "\\\\")


def _table(rows: list[str], kind: str) -> str:
    style = _NODE_BORDER[kind]
    attrs = (f'BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4" '
             f'BGCOLOR="{_NODE_FILL[kind]}"')
    if style in ("dashed", "dotted", "rounded"):
        attrs += f' STYLE="{style.upper()}"'
    return f"<<TABLE {attrs}>{''.join(rows)}</TABLE>>"


def _node_label(n: dict[str, Any], t: dict[str, str]) -> str:
    kind = str(n.get("kind", "managed"))
    if kind == "hosts":
        rows = [f"<TR><TD><B>{esc(n.get('hosts', 0))} {esc(t['hosts_label'])}</B></TD></TR>"]
        rows += [f'<TR><TD><FONT POINT-SIZE="9">{esc(ip)}</FONT></TD></TR>'
                 for ip in n.get("host_sample") or []]
        if int(n.get("hosts") or 0) > len(n.get("host_sample") or []):
            rows.append('<TR><TD><FONT POINT-SIZE="9">…</FONT></TD></TR>')
        return _table(rows, kind)
    rows = [f"<TR><TD><B>{esc(n.get('label') or n.get('id'))}</B></TD></TR>"]
    if kind == "uplink":
        rows.append(f"<TR><TD>{esc(t['next_hop'])} {esc(n.get('mgmt_address') or '')}</TD></TR>")
        return _table(rows, kind)
    model = " ".join(str(x) for x in (n.get("vendor"), n.get("model")) if x)
    if model:
        rows.append(f"<TR><TD>{esc(model)}</TD></TR>")
    if n.get("mgmt_address"):
        rows.append(f"<TR><TD>{esc(n['mgmt_address'])}</TD></TR>")
    if kind == "unmanaged":
        rows.append(f'<TR><TD><I><FONT POINT-SIZE="9">{esc(t["unmanaged_tag"])}</FONT>'
                    f"</I></TD></TR>")
    if kind == "external" and n.get("pd"):
        rows.append(f'<TR><TD><FONT POINT-SIZE="9">PD {esc(n["pd"])}</FONT></TD></TR>')
    return _table(rows, kind)


def _port(p: object) -> str:
    text = esc(p) if p else ""
    return f'<<FONT POINT-SIZE="9" COLOR="#1d4ed8">{text}</FONT>>' if text else '""'


def to_dot(graph: dict[str, Any], pd_code: str, pd_name: str, generated_at: datetime, *,
           lang: str = "id", baseline: dict[str, Any] | None = None) -> str:
    """The DOT source of a PD's LAN diagram."""
    t = TEXTS.get(lang, TEXTS["id"])
    when = generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if baseline:
        approved = datetime.fromtimestamp(float(baseline["approved_at"]), UTC)
        base_line = (f"{esc(t['baseline'])}: {esc(approved.strftime('%Y-%m-%d %H:%M UTC'))} "
                     f"({esc(baseline.get('approved_by', ''))})")
    else:
        base_line = esc(t["no_baseline"])
    title = (f'<<FONT POINT-SIZE="18"><B>{esc(t["title"])} — {esc(pd_name)} '
             f"({esc(pd_code)})</B></FONT><BR/>"
             f'<FONT POINT-SIZE="11">{esc(t["date"])}: {esc(when)}<BR/>{base_line}<BR/>'
             f"{esc(t['source'])}</FONT>>")
    out = ["digraph lan {",
           f"  graph [label={title} labelloc=t fontname=\"Helvetica\" rankdir=TB "
           f"nodesep=0.6 ranksep=0.9 splines=true];",
           '  node [fontname="Helvetica" fontsize=11];',
           '  edge [fontname="Helvetica" fontsize=9 dir=none];']
    ids: dict[str, str] = {}
    for i, n in enumerate(graph.get("nodes", [])):
        ids[str(n["id"])] = f"n{i}"
        out.append(f"  n{i} [shape=plain label={_node_label(n, t)}];")
    for lk in graph.get("links", []):
        a, b = ids.get(str(lk["a"])), ids.get(str(lk["b"]))
        if a is None or b is None:
            continue
        style = _EDGE_STYLE.get(str(lk.get("kind")), _EDGE_STYLE["lldp"])
        out.append(f"  {a} -> {b} [taillabel={_port(lk.get('a_port'))} "
                   f"headlabel={_port(lk.get('b_port'))} labeldistance=2.2 {style}];")
    out.extend(_legend(t))
    out.append("}")
    return "\n".join(out) + "\n"


def _legend(t: dict[str, str]) -> list[str]:
    rows = [f'<TR><TD COLSPAN="2"><B>{esc(t["legend"])}</B></TD></TR>']
    for kind in ("managed", "unmanaged", "external", "uplink", "hosts"):
        rows.append(f'<TR><TD BGCOLOR="{_NODE_FILL[kind]}" BORDER="1" WIDTH="30"> </TD>'
                    f'<TD ALIGN="LEFT">{esc(t[kind])}</TD></TR>')
    for kind, colour, text in (("lldp", "#1f2937", t["lldp"]),
                               ("uplink", "#15803d", t["uplink_link"]),
                               ("hosts", "#6b7280", t["hosts_link"])):
        line = "━━━" if kind != "hosts" else "╌╌╌"
        rows.append(f'<TR><TD><FONT COLOR="{colour}">{line}</FONT></TD>'
                    f'<TD ALIGN="LEFT">{esc(text)}</TD></TR>')
    table = (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="3">'
             f"{''.join(rows)}</TABLE>>")
    return ["  subgraph legend_rank {", "    rank=sink;",
            f"    legend [shape=plain label={table}];", "  }"]


def dot_available() -> bool:
    return shutil.which("dot") is not None


def render_svg(dot_source: str) -> bytes:
    """Run ``dot -Tsvg``; raises :class:`DiagramUnavailable` if Graphviz is not installed."""
    exe = shutil.which("dot")
    if exe is None:
        raise DiagramUnavailable(
            "Graphviz 'dot' is not installed on the collector; install the Debian package "
            "'graphviz' (scripts/install-inventory-deps.sh) to render LAN diagrams")
    try:
        done = subprocess.run([exe, "-Tsvg"], input=dot_source.encode(), capture_output=True,
                              timeout=DOT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise DiagramError(f"Graphviz dot took longer than {DOT_TIMEOUT_S:.0f} s") from e
    except OSError as e:
        raise DiagramError(f"cannot run Graphviz dot: {e.strerror}") from e
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise DiagramError(f"Graphviz dot failed (exit {done.returncode}): {' '.join(err)}")
    return done.stdout
