#!/usr/bin/env bash
# make demo: a collector with its dashboard API (SQLite state, a local InfluxDB 1.x), a local
# agent probing loopback targets, and a small simulated region (tests/netlab.py: a data centre
# and three PD offices in network namespaces running snmpd + lldpd) polled by one agent per PD,
# all on embedded defaults, under ./demo/. Ctrl-C stops everything it started.
# SPBE_DEMO_LAB=0 skips the simulated region.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD/demo
PY=${PY:-$PWD/.venv/bin/python}
export PYTHONPATH=$PWD
mkdir -p "$ROOT"
bash scripts/apt-ensure.sh influxdb openssl curl graphviz
LAB=${SPBE_DEMO_LAB:-1}
[ "$LAB" = 1 ] && bash scripts/install-netlab-deps.sh "$(dirname "$(dirname "$PY")")" >/dev/null

pids=()
cleanup() {
    # a second signal (make forwards SIGTERM to us) must not cut the clean-up short
    trap '' INT TERM
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "$LAB" = 1 ] && "$PY" -m tests.netlab down --state-file "$ROOT/lab.json" >/dev/null 2>&1 || true
    echo "demo stopped; state kept in $ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
INFLUX_PORT=$(free_port); COLLECTOR_PORT=${SPBE_DEMO_PORT:-8443}

# InfluxDB 1.x on loopback, data under demo/influxdb
mkdir -p "$ROOT/influxdb"
cat > "$ROOT/influxdb/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$(free_port)"
[meta]
  dir = "$ROOT/influxdb/meta"
[data]
  dir = "$ROOT/influxdb/data"
  wal-dir = "$ROOT/influxdb/wal"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  auth-enabled = false
  log-enabled = false
CONF
influxd run -config "$ROOT/influxdb/influxdb.conf" > "$ROOT/influxd.log" 2>&1 &
pids+=($!)

# A demo CA and server certificate, so the agent ships over real HTTPS
if [ ! -f "$ROOT/tls/server.pem" ]; then
    mkdir -p "$ROOT/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=spbe demo CA" \
        -keyout "$ROOT/tls/ca.key" -out "$ROOT/tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$ROOT/tls/server.key" -out "$ROOT/tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$ROOT/tls/ext.cnf"
    openssl x509 -req -in "$ROOT/tls/server.csr" -CA "$ROOT/tls/ca.pem" -CAkey "$ROOT/tls/ca.key" \
        -CAcreateserial -days 365 -extfile "$ROOT/tls/ext.cnf" -out "$ROOT/tls/server.pem" 2>/dev/null
    chmod 600 "$ROOT/tls/"*.key
fi

export SPBE_COLLECTOR_DATABASE_URL="sqlite:///$ROOT/state.sqlite"
export SPBE_COLLECTOR_INFLUXDB__URL="http://127.0.0.1:$INFLUX_PORT"
export SPBE_COLLECTOR_LISTEN__PORT=$COLLECTOR_PORT
export SPBE_COLLECTOR_LISTEN__TLS_CERT_FILE="$ROOT/tls/server.pem"
export SPBE_COLLECTOR_LISTEN__TLS_KEY_FILE="$ROOT/tls/server.key"
COLLECTOR=("$PY" -m collector.cli)

if [ ! -f "$ROOT/agent.token" ]; then
    "${COLLECTOR[@]}" pd add DISKOMINFO "Dinas Komunikasi dan Informatika" >/dev/null
    (umask 077; "${COLLECTOR[@]}" agent add diskominfo-gw --pd DISKOMINFO > "$ROOT/agent.token")
    (umask 077; "${COLLECTOR[@]}" apikey add demo-admin --role admin > "$ROOT/admin.key")
fi

"${COLLECTOR[@]}" serve > "$ROOT/collector.log" 2>&1 &
pids+=($!)

cat > "$ROOT/agent.yaml" <<CONF
agent_id: diskominfo-gw
pd_code: DISKOMINFO
collector:
  url: https://127.0.0.1:$COLLECTOR_PORT
  token_file: $ROOT/agent.token
  ca_bundle: $ROOT/tls/ca.pem
spool:
  path: $ROOT/agent-spool.sqlite
intervals: {heartbeat_s: 10, probes_s: 10, host_facts_s: 60}
probes:
  - {name: gateway-icmp, type: icmp, host: 127.0.0.1}
  - {name: influxdb, type: tcp, host: 127.0.0.1, port: $INFLUX_PORT}
  - {name: collector-api, type: http, url: "https://127.0.0.1:$COLLECTOR_PORT/api/v1/health", ca_bundle: $ROOT/tls/ca.pem}
CONF

for _ in $(seq 1 100); do
    curl -sf --cacert "$ROOT/tls/ca.pem" "https://127.0.0.1:$COLLECTOR_PORT/api/v1/health" >/dev/null 2>&1 && break
    sleep 0.2
done
"$PY" -m agent.cli -c "$ROOT/agent.yaml" run > "$ROOT/agent.log" 2>&1 &
pids+=($!)

if [ "$LAB" = 1 ]; then
    echo "starting the simulated region (network namespaces with snmpd + lldpd) ..."
    "$PY" -m tests.netlab down --state-file "$ROOT/lab.json" >/dev/null 2>&1 || true
    "$PY" -m tests.netlab up --state-file "$ROOT/lab.json" >/dev/null
    for cfg in $("$PY" scripts/demo_region.py "$ROOT/lab.json" "$ROOT" \
                 "https://127.0.0.1:$COLLECTOR_PORT" "$ROOT/tls/ca.pem"); do
        name=$(basename "$cfg" .yaml)
        "$PY" -m agent.cli -c "$cfg" run > "$ROOT/$name.log" 2>&1 &
        pids+=($!)
    done
fi

cat <<MSG

spbe-monitor demo is running.
  Dashboard API : https://127.0.0.1:$COLLECTOR_PORT/docs   (CA: $ROOT/tls/ca.pem)
  API key       : $(cat "$ROOT/admin.key")   (header X-API-Key, role admin)
  Try           : curl --cacert $ROOT/tls/ca.pem -H "X-API-Key: \$(cat $ROOT/admin.key)" https://127.0.0.1:$COLLECTOR_PORT/api/v1/probes
                  .../api/v1/devices   .../api/v1/pds/DINKES/topology   .../api/v1/pds/DINKES/topology.svg
  Logs          : $ROOT/*.log
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "a demo process exited; see the logs in $ROOT" >&2
