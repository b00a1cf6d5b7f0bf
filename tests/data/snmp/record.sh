#!/usr/bin/env bash
# Record what the SNMP driver reads from a device, in the format tests/test_snmp_parse.py
# replays (net-snmp `snmpbulkwalk -On`, numeric OIDs, no MIB files).
#
# Usage: tests/data/snmp/record.sh HOST[:PORT] COMMUNITY [EXTRA_OID...] > device.txt
# EXTRA_OID: vendor scalars from the device's profile (e.g. 1.3.6.1.4.1.14988.1.1.7).
set -euo pipefail
target=$1 community=$2
shift 2
export MIBS="" MIBDIRS=/nonexistent
persist=$(mktemp -d)
trap 'rm -rf "$persist"' EXIT
export SNMP_PERSISTENT_DIR=$persist
subtrees=(
    1.3.6.1.2.1.1 1.3.6.1.2.1.4.1 1.3.6.1.2.1.17.1.2
    1.3.6.1.2.1.2.2.1 1.3.6.1.2.1.31.1.1.1
    1.3.6.1.2.1.4.20 1.3.6.1.2.1.4.34 1.3.6.1.2.1.4.35 1.3.6.1.2.1.4.22
    1.3.6.1.2.1.4.24.7 1.3.6.1.2.1.4.24.4 1.3.6.1.2.1.4.21
    1.0.8802.1.1.2.1.3.7 1.0.8802.1.1.2.1.4
    1.3.6.1.2.1.47.1.1.1 1.3.6.1.2.1.17.4.3 1.3.6.1.2.1.17.7.1.2.2 1.3.6.1.2.1.17.1.4
    "$@"
)
echo "# recorded $(date -u +%Y-%m-%dT%H:%M:%SZ) with: snmpbulkwalk -v2c -On $target"
for oid in "${subtrees[@]}"; do
    snmpbulkwalk -v2c -c "$community" -On -Cr25 "$target" "$oid" \
        | grep -v -e '= No Such Object' -e '= No Such Instance' -e '= No more variables' || true
done
