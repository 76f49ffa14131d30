#!/usr/bin/env bash
# Gateway load benchmark: server-everything's echo, called directly over its
# own Streamable HTTP and through Warden (in front of the same server over
# stdio, with durable activity logging on), in one run. Prints p50/p99 and
# throughput with ratios to the direct server. Everything listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p warden-cli -p warden-bench
bin=target/release
data=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cleanup() { kill "${direct:-}" "${gw:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
PORT=$port NODE_OPTIONS="--require $PWD/tests/e2e/loopback.cjs" tests/node_modules/.bin/mcp-server-everything streamableHttp >/dev/null 2>&1 &
direct=$!
$bin/warden --data-dir "$data" server add ev -- "$PWD/tests/node_modules/.bin/mcp-server-everything" stdio >/dev/null
token=$($bin/warden --data-dir "$data" agent add load --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["credential"])')
RUST_LOG=warn $bin/warden --data-dir "$data" serve --listen 127.0.0.1:0 > "$data/endpoint.out" 2>"$data/serve.err" &
gw=$!
for _ in $(seq 100); do [ -s "$data/endpoint.out" ] && grep -q ready <($bin/warden --data-dir "$data" server list) && break; sleep 0.2; done
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
url=$(head -1 "$data/endpoint.out")
echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -sr)"
$bin/warden-load --target "direct=http://127.0.0.1:$port/mcp" --target "warden=$url@$token" \
  --tool warden=ev__echo "$@"
