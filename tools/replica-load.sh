#!/usr/bin/env bash
# Publication lag under sustained ingest, and point-check throughput on a
# primary alone, then spread over the primary and one, then two replicas,
# all on this machine (issue 20; BENCH.md).
#
#   tools/replica-load.sh SUBJECTS RATE SECONDS CONNECTIONS [WEED] [DOCKET] [LOAD]
#
# Builds the demo with SUBJECTS subjects, starts SeaweedFS (WEED, default
# $DOCKET_WEED) on loopback, `docket serve --publish` (default publication
# and checkpoint intervals: 1 s each) and two `docket replica`s following the
# bucket (--interval-ms 1000, the default), then:
#   1. appends RATE notices/s for SECONDS seconds to the primary, sampling
#      its docket_publish_lag_seconds every 100 ms (replica-load append);
#      the replicas' lag at the end;
#   2. closed-loop signed point checks from CONNECTIONS threads for SECONDS
#      seconds against the primary alone, then the primary and one replica,
#      then the primary and both, each followed by the same loop on
#      /healthz (replica-load check).
# DOCKET and LOAD default to target/release/docket and target/release/replica-load.
set -euo pipefail
subjects=${1:?usage: replica-load.sh SUBJECTS RATE SECONDS CONNECTIONS [WEED] [DOCKET] [LOAD]}
rate=${2:?rate}
seconds=${3:?seconds}
connections=${4:?connections}
weed=${5:-${DOCKET_WEED:?set DOCKET_WEED or pass the weed binary}}
docket=${6:-target/release/docket}
load=${7:-target/release/replica-load}
# shellcheck source=tools/replica-common.sh
source "$(dirname "$0")/replica-common.sh"
metric() { curl -sf "$1/metrics" | awk -v name="$2" '$1 == name { print $2 }'; }
echo "ledger: $records records ($subjects subjects); load average $(cut -d' ' -f1-3 /proc/loadavg)"
primary="http://127.0.0.1:$(port)"
"$docket" serve --dir "$work/primary" --addr "${primary#http://}" \
  --publish s3://public/log --publish-entries s3://private/log >/dev/null 2>"$work/primary.log" &
pids+=($!)
published() { curl -sf "http://127.0.0.1:$s3/public/log/checkpoint" | sed -n 2p | grep -qx "$1"; }
wait_for published "$records"
replicas=()
for name in one two; do
  url="http://127.0.0.1:$(port)"
  "$docket" replica --dir "$work/$name" --ledger-config "$work/primary/ledger.json" --from s3://public/log \
    --entries s3://private/log --primary "$primary" --addr "${url#http://}" >/dev/null 2>"$work/$name.log" &
  pids+=($!)
  replicas+=("$url")
done
for url in "${replicas[@]}"; do wait_for curl -sf "$url/readyz"; done
echo "primary $primary, replicas ${replicas[*]} ready"

echo "== 1. publication lag: $rate notices/s for $seconds s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
"$load" append --url "$primary" --rate "$rate" --seconds "$seconds" --bucket "http://127.0.0.1:$s3/public/log" --replica "${replicas[0]}"
final=$(metric "$primary" docket_log_records || true)
for url in "${replicas[@]}"; do
  echo "replica $url at the end: behind $(metric "$url" docket_replica_behind_records) records, lag $(metric "$url" docket_replica_lag_seconds) s"
done
# Let the replicas take the last checkpoint before the reads.
for url in "${replicas[@]}"; do wait_for curl -sf "$url/readyz"; done

echo "== 2. point checks, $connections connections, $seconds s each (load average $(cut -d' ' -f1-3 /proc/loadavg))"
"$load" check --urls "$primary" --connections "$connections" --seconds "$seconds" --subjects "$subjects"
"$load" check --urls "$primary,${replicas[0]}" --connections "$connections" --seconds "$seconds" --subjects "$subjects"
"$load" check --urls "$primary,${replicas[0]},${replicas[1]}" --connections "$connections" --seconds "$seconds" --subjects "$subjects"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); log records ${final:-?}"
