#!/usr/bin/env bash
# Gateway load benchmark: server-everything's echo, in one run, alternating
# targets round by round: directly over its own Streamable HTTP, the stdio
# floor (the driver speaking to the server's stdin, no HTTP), Warden in front
# of the stdio server (policy and durable activity logging on), and the
# peers mcp-proxy (PyPI) and supergateway --stateful (npm) in front of the
# same stdio server. Prints p50/p90/p99 and throughput with ratios to the
# direct server, and the driver's own CPU. Everything listens on 127.0.0.1.
# Runs inside a throwaway D-Bus session and keychain (Warden's secrets).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${WARDEN_BENCH_IN_SESSION:-}" ]; then
  cargo build --release -q -p warden-cli -p warden-bench
  exec env WARDEN_BENCH_IN_SESSION=1 bash .ci/with-keychain bash "$0" "$@"
fi
bin=target/release
data=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cleanup() { kill "${direct:-}" "${gw:-}" "${proxy:-}" "${sg:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
everything="$PWD/tests/node_modules/.bin/mcp-server-everything"
PORT=$port NODE_OPTIONS="--require $PWD/tests/e2e/loopback.cjs" "$everything" streamableHttp >/dev/null 2>&1 &
direct=$!
# The peers people use today, each in front of the same stdio server.
proxy_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
tests/.venv-peers/bin/mcp-proxy --host 127.0.0.1 --port "$proxy_port" -- "$everything" stdio >/dev/null 2>&1 &
proxy=$!
sg_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
NODE_OPTIONS="--require $PWD/tests/e2e/loopback.cjs" tests/node_modules/.bin/supergateway --stdio "$everything stdio" \
  --outputTransport streamableHttp --stateful --port "$sg_port" --logLevel none >/dev/null 2>&1 &
sg=$!
source tests/bench-setup.sh
# Started directly (not through w): $! must be the gateway itself, so cleanup stops it.
RUST_LOG=warn $bin/warden --data-dir "$data" serve --listen 127.0.0.1:0 > "$data/endpoint.out" 2>"$data/serve.err" &
gw=$!
for _ in $(seq 100); do [ -s "$data/endpoint.out" ] && w server list 2>/dev/null | grep -q ready && break; sleep 0.2; done
# Each HTTP target must answer an initialize, not just accept connections.
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ready","version":"1"}}}'
for p in $port $proxy_port $sg_port; do
  ok=
  for _ in $(seq 150); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$p/mcp" \
      -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' -d "$init" || true)
    if [ "$code" = 200 ]; then ok=1; break; fi
    sleep 0.2
  done
  [ -n "$ok" ] || { echo "bench: the server on port $p did not answer initialize" >&2; exit 1; }
done
url=$(head -1 "$data/endpoint.out")
echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -sr)"
$bin/warden-load --target "direct=http://127.0.0.1:$port/mcp" \
  --target "stdio-floor=stdio:$everything stdio" \
  --target "warden=$url@$token" --tool warden=ev__echo \
  --target "mcp-proxy=http://127.0.0.1:$proxy_port/mcp" \
  --target "supergateway=http://127.0.0.1:$sg_port/mcp" "$@"
