#!/usr/bin/env bash
# The desktop app's memory after start: the proportional set size (PSS) of
# the app and every process it runs (WebKit's web and network processes),
# next to a blank Tauri window built from the same crates and configuration
# (src-tauri/examples/blank.rs), measured in the same run, rounds alternating.
# Runs on a virtual display with a throwaway keychain. Prints, never asserts.
#
#   bash tests/bench-app-memory.sh [ROUNDS]      (default 3; debug builds)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
if [ -z "${WARDEN_BENCH_IN_SESSION:-}" ]; then
  cargo build -q -p warden-app --bins --examples
  exec env WARDEN_BENCH_IN_SESSION=1 xvfb-run -a -s "-screen 0 1280x800x24" bash .ci/with-keychain bash "$0" "$@"
fi

# PSS in KiB of a process and all its descendants.
pss_tree() {
  local pids=("$1") all=() p kids total=0
  while [ "${#pids[@]}" -gt 0 ]; do
    p=${pids[0]}; pids=("${pids[@]:1}"); all+=("$p")
    kids=$(ps -o pid= --ppid "$p" 2>/dev/null || true)
    for k in $kids; do pids+=("$k"); done
  done
  for p in "${all[@]}"; do
    local kb
    kb=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo "$total ${#all[@]}"
}

# Starts a program, waits until it settled, prints "KiB processes".
measure() {
  local what=$1 data pid
  data=$(mktemp -d)
  printf '[gateway]\nlisten = "127.0.0.1:0"\n' >"$data/config.toml"
  if [ "$what" = app ]; then
    WARDEN_DATA_DIR=$data target/debug/warden-app >/dev/null 2>&1 &
  else
    target/debug/examples/blank >/dev/null 2>&1 &
  fi
  pid=$!
  if [ "$what" = app ]; then
    for _ in $(seq 300); do [ -s "$data/endpoint" ] && break; sleep 0.1; done
    [ -s "$data/endpoint" ] || { echo "the app did not start" >&2; kill "$pid"; exit 1; }
  fi
  # Both windows load their page and go idle.
  sleep 8
  pss_tree "$pid"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
declare -a app_kb blank_kb
for r in $(seq "$rounds"); do
  read -r a an < <(measure app)
  read -r b bn < <(measure blank)
  app_kb+=("$a"); blank_kb+=("$b")
  printf 'round %d: app %6s MiB (%d processes), blank Tauri window %6s MiB (%d processes)\n' \
    "$r" "$(mib "$a")" "$an" "$(mib "$b")" "$bn"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
a=$(median "${app_kb[@]}"); b=$(median "${blank_kb[@]}")
echo
echo "Desktop app memory after start (PSS, median of $rounds rounds, $(date -u +%Y-%m-%d), $(nproc) cores, debug builds):"
printf '  Warden app (gateway, tray, UI, WebKit)  %7s MiB\n' "$(mib "$a")"
printf '  blank Tauri window                      %7s MiB\n' "$(mib "$b")"
awk -v a="$a" -v b="$b" 'BEGIN { printf "  ratio                                   %7.2fx  (+%.1f MiB)\n", a / b, (a - b) / 1024 }'
