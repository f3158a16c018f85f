#!/usr/bin/env bash
# Replica catch-up next to `docket verify --url` in the same run, and the
# time a primary takes to publish a ledger it opens (issue 20; BENCH.md).
#
#   tools/replica-bench.sh SUBJECTS [WEED] [DOCKET]
#
# Builds the demo with SUBJECTS subjects, starts SeaweedFS (WEED, default
# $DOCKET_WEED) on loopback and `docket serve --publish`, and times, one
# after the other on the same machine:
#   1. publication: from the server's start to the bucket holding its checkpoint;
#   2. `docket verify --url` with an oversight key (every tile, every entry
#      bundle, every event signature) against the primary;
#   3. `docket restore` from the bucket (the replica's verifying follower and
#      log, without a server);
#   4. `docket replica` from start to serving the primary's checkpoint.
# Prints one line per step: records, seconds, records/s. Needs curl.
set -euo pipefail
subjects=${1:?usage: replica-bench.sh SUBJECTS [WEED] [DOCKET]}
weed=${2:-${DOCKET_WEED:?set DOCKET_WEED or pass the weed binary}}
docket=${3:-target/release/docket}
# shellcheck source=tools/replica-common.sh
source "$(dirname "$0")/replica-common.sh"
now() { date +%s.%N; }
rate() { python3 -c "import sys; n,a,b=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print(f'{n} records in {b-a:.2f} s: {n/(b-a):,.0f} records/s')" "$@"; }
echo "ledger: $records records ($subjects subjects)"

# 1. Publication of the whole ledger by a server that opens it.
primary_port=$(port)
start=$(now)
"$docket" serve --dir "$work/primary" --addr "127.0.0.1:$primary_port" \
  --publish s3://public/log --publish-entries s3://private/log --publish-interval-ms 100 >/dev/null 2>"$work/primary.log" &
pids+=($!)
published() { curl -sf "http://127.0.0.1:$s3/public/log/checkpoint" | sed -n 2p | grep -qx "$records"; }
wait_for published
echo "publish: $(rate "$records" "$start" "$(now)")"
primary="http://127.0.0.1:$primary_port"

# An oversight agency, so that verify reads the entry bundles.
"$docket" keygen --out "$work/audit.key" >"$work/audit.pub"
public=$(grep -oE '[0-9a-f]{64}' "$work/audit.pub" | head -1)
effective=$(date -u -d '5 minutes ago' +%Y-%m-%dT%H:%M:%SZ)
printf '{"format":3,"signer":"registry","effective_at":"%s","body":{"registry":{"agency_registered":{"agency":"audit-office","name":"National Audit Office","roles":["oversight"],"keys":["%s"]}}}}' \
  "$effective" "$public" >"$work/oversight.json"
"$docket" sign --key "$work/primary/keys/registry-root.key" "$work/oversight.json" >"$work/oversight.jsonl"
"$docket" post "$primary/v1/events" "$work/oversight.jsonl" >/dev/null
records=$((records + 1))
wait_for published

# 2. docket verify --url, every entry and signature.
start=$(now)
"$docket" verify --url "$primary/log" --log-key "$work/primary/ledger.json" --key "$work/audit.key" --agency audit-office >/dev/null
echo "verify --url (tiles, entries, signatures): $(rate "$records" "$start" "$(now)")"

# 3. docket restore from the bucket.
start=$(now)
"$docket" restore --dir "$work/restored" --ledger-config "$work/primary/ledger.json" \
  --log-key "$work/primary/keys/log.key" --from s3://public/log --entries s3://private/log >/dev/null
echo "restore from the bucket (verify + append): $(rate "$records" "$start" "$(now)")"

# 4. docket replica, from start to serving the primary's checkpoint.
replica_port=$(port)
start=$(now)
"$docket" replica --dir "$work/replica" --ledger-config "$work/primary/ledger.json" --from s3://public/log \
  --entries s3://private/log --primary "$primary" --addr "127.0.0.1:$replica_port" --interval-ms 100 \
  >/dev/null 2>"$work/replica.log" &
pids+=($!)
caught_up() { curl -sf "http://127.0.0.1:$replica_port/log/checkpoint" | sed -n 2p | grep -qx "$records"; }
wait_for caught_up
echo "replica catch-up (verify + append + checkpoint): $(rate "$records" "$start" "$(now)")"
