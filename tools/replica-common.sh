# Shared by tools/replica-bench.sh and tools/replica-load.sh (sourced, not
# run): a scratch directory cleaned on exit, free loopback ports, SeaweedFS
# started with a `public` and a `private` bucket and the S3 environment for
# docket, and the demo ledger. Expects $weed, $docket and $subjects set.
work=$(mktemp -d)
pids=()
weed_pid=
# weed takes minutes to stop on SIGTERM: a throwaway server gets SIGKILL.
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "$weed_pid" ] && kill -KILL "$weed_pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for CMD...: until it succeeds (at most 30 minutes)
  for _ in $(seq 1 18000); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.1; done; echo "timed out: $*" >&2; exit 1
}

# SeaweedFS on loopback, every port free, with the two buckets.
s3=$(port)
flags=()
for flag in master.port master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc s3.port.grpc metricsPort; do
  flags+=("-$flag=$(port)")
done
mkdir -p "$work/weed"
"$weed" server -s3 -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false -s3.port.iceberg=0 -s3.port.lance=0 \
  -dir="$work/weed" -s3.port="$s3" "${flags[@]}" >"$work/weed.log" 2>&1 &
weed_pid=$!
wait_for curl -sf -X PUT "http://127.0.0.1:$s3/public"
curl -sf -X PUT "http://127.0.0.1:$s3/private" >/dev/null
export AWS_ENDPOINT="http://127.0.0.1:$s3" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench RUST_LOG=warn

"$docket" demo --dir "$work/primary" --subjects "$subjects" >/dev/null
records=$(sed -n 2p "$work/primary/checkpoints/latest")
