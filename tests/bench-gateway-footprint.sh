#!/usr/bin/env bash
# Warden alone: the time from start until the endpoint answers, the
# headless gateway's memory idle, with 1,000 agent sessions held open (each
# with its GET stream), and under load (warden-load at concurrency 64).
# Release build, one stdio server behind it, everything on 127.0.0.1, inside
# a throwaway keychain. Prints, never asserts.
#
#   bash tests/bench-gateway-footprint.sh [SESSIONS]      (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-1000}
if [ -z "${WARDEN_BENCH_IN_SESSION:-}" ]; then
  cargo build --release -q -p warden-cli -p warden-bench
  exec env WARDEN_BENCH_IN_SESSION=1 bash .ci/with-keychain bash "$0" "$@"
fi
bin=target/release
data=$(mktemp -d)
cleanup() { kill "${gw:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
source tests/bench-setup.sh
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')

start=$(date +%s%N)
RUST_LOG=warn $bin/warden --data-dir "$data" serve --listen "127.0.0.1:$port" >/dev/null 2>"$data/serve.err" &
gw=$!
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ready","version":"1"}}}'
for _ in $(seq 2000); do
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/mcp" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' -d "$init" || true)
  [ "$status" = 200 ] && break
  sleep 0.005
done
answered=$(( ($(date +%s%N) - start) / 1000000 ))
for _ in $(seq 100); do w server list 2>/dev/null | grep -q ready && break; sleep 0.1; done
ready=$(( ($(date +%s%N) - start) / 1000000 ))

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$gw/status"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$gw/smaps_rollup"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
sleep 3
idle_rss=$(rss); idle_pss=$(pss)

# Sessions held open: each initialized, each with its GET stream left open.
held=$(python3 - "$port" "$token" "$sessions" "$gw" <<'PY'
import json, resource, socket, sys, time
port, token, n, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * n + 256), hard))
init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "held", "version": "1"}}}).encode()
def request(method, path, body=b"", extra=""):
    s = socket.create_connection(("127.0.0.1", port))
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    s.sendall(head + body)
    return s
streams = []
for i in range(n):
    s = request("POST", "/mcp", init)
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += s.recv(65536)
    s.close()
    sid = next(l.split(b":", 1)[1].strip().decode() for l in reply.split(b"\r\n") if l.lower().startswith(b"mcp-session-id:"))
    note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
    request("POST", "/mcp", note, f"Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\n").close()
    streams.append(request("GET", "/mcp", b"", f"Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\n"))
time.sleep(2)
rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
print(len(streams), rss)
PY
)
held_n=${held% *}; held_rss=${held#* }

# Under load: the peak resident size while warden-load runs at concurrency 64.
peak=0
$bin/warden-load --target "warden=http://127.0.0.1:$port/mcp@$token" --tool warden=ev__echo \
  --calls 20000 --concurrency 64 --rounds 1 >"$data/load.out" 2>&1 &
load=$!
while kill -0 "$load" 2>/dev/null; do
  r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
  sleep 0.1
done
wait "$load"

echo "Warden alone ($(date -u +%Y-%m-%d), $(nproc) CPUs, release build, one stdio server):"
printf '  start until the endpoint answers an initialize   %6d ms\n' "$answered"
printf '  start until its server is ready                   %6d ms\n' "$ready"
printf '  memory idle (RSS / PSS)                           %6s / %s MiB\n' "$(mib "$idle_rss")" "$(mib "$idle_pss")"
printf '  memory with %d sessions held open (RSS)         %6s MiB\n' "$held_n" "$(mib "$held_rss")"
printf '  peak memory under load, concurrency 64 (RSS)      %6s MiB\n' "$(mib "$peak")"
grep -E "calls/s|warden" "$data/load.out" | tail -2 | sed 's/^/  load: /'
