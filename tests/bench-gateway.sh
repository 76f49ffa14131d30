#!/usr/bin/env bash
# Gateway load benchmark: server-everything's echo, called directly over its
# own Streamable HTTP and through Warden (in front of the same server over
# stdio, with policy and durable activity logging on), in one run. Prints
# p50/p99 and throughput with ratios to the direct server. Everything listens
# on 127.0.0.1. Runs inside a throwaway D-Bus session and keychain, since
# Warden keeps its secrets there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${WARDEN_BENCH_IN_SESSION:-}" ]; then
  cargo build --release -q -p warden-cli -p warden-bench
  exec env WARDEN_BENCH_IN_SESSION=1 bash .ci/with-keychain bash "$0" "$@"
fi
bin=target/release
data=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cleanup() { kill "${direct:-}" "${gw:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
PORT=$port NODE_OPTIONS="--require $PWD/tests/e2e/loopback.cjs" tests/node_modules/.bin/mcp-server-everything streamableHttp >/dev/null 2>&1 &
direct=$!
w() { $bin/warden --data-dir "$data" "$@"; }
password="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
secret=$(printf '%s\n' "$password" | w init --admin operator --password-stdin --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["totp_secret"])')
code=$(python3 - "$secret" <<'PY'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
d = hmac.new(key, struct.pack(">Q", int(time.time() // 30)), hashlib.sha1).digest()
o = d[-1] & 15
print(f"{(struct.unpack('>I', d[o:o + 4])[0] & 0x7FFFFFFF) % 1000000:06d}")
PY
)
printf '%s\n' "$password" | w login operator --password-stdin --totp "$code" >/dev/null
w server add ev -- "$PWD/tests/node_modules/.bin/mcp-server-everything" stdio >/dev/null
w role add load >/dev/null
w grant load ev echo allow >/dev/null
token=$(w agent add load --role load --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["credential"])')
RUST_LOG=warn w serve --listen 127.0.0.1:0 > "$data/endpoint.out" 2>"$data/serve.err" &
gw=$!
for _ in $(seq 100); do [ -s "$data/endpoint.out" ] && w server list 2>/dev/null | grep -q ready && break; sleep 0.2; done
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
url=$(head -1 "$data/endpoint.out")
echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -sr)"
$bin/warden-load --target "direct=http://127.0.0.1:$port/mcp" --target "warden=$url@$token" \
  --tool warden=ev__echo "$@"
