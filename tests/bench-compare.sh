#!/usr/bin/env bash
# Is a change slower? Warden built at REV and Warden as checked out now, each
# in front of its own server-everything over stdio with policy and durable
# activity logging on, measured in one run by warden-load, alternating round
# by round so both see the same machine. REV is the baseline: the working
# tree's figures print as ratios to it, and so do those of a second install
# of REV measured last, which shows how much the order alone moves them.
# Everything listens on 127.0.0.1.
#
#   tests/bench-compare.sh REV [warden-load options, e.g. --calls 4000]
set -euo pipefail
cd "$(dirname "$0")/.."
base=target/bench-base
if [ -z "${WARDEN_BENCH_IN_SESSION:-}" ]; then
  rev=${1:?usage: tests/bench-compare.sh REV [warden-load options]}
  cargo build --release -q --locked -p warden-cli -p warden-bench
  # REV's sources, built in a target folder of their own (cargo tells the
  # workspace's crates apart by modification time, not by path, so the two
  # must never share one), seeded with the dependencies already built. The
  # sources are touched: git archive dates them to the commit, which would
  # make the seeded artifacts look newer.
  full=$(git rev-parse --verify "$rev^{commit}")
  if [ ! -x "$base/bin/$full/warden" ]; then
    rm -rf "$base/src" && mkdir -p "$base/src" "$base/bin/$full" "$base/target"
    git archive "$full" | tar -x -C "$base/src"
    find "$base/src" -type f -exec touch {} +
    [ -d "$base/target/release" ] || cp -r target/release "$base/target/release"
    CARGO_TARGET_DIR="$PWD/$base/target" cargo build --release -q --locked \
      --manifest-path "$base/src/Cargo.toml" -p warden-cli
    cp "$base/target/release/warden" "$base/bin/$full/warden"
  fi
  if cmp -s target/release/warden "$base/bin/$full/warden"; then
    echo "bench-compare: the binary at $rev and the working tree's are the same file" >&2
    exit 1
  fi
  exec env WARDEN_BENCH_IN_SESSION=1 bash .ci/with-keychain bash "$0" "$@"
fi
rev=$1
shift
full=$(git rev-parse --verify "$rev^{commit}")
work=$(mktemp -d)
cleanup() { kill "${gw_base:-}" "${gw_head:-}" "${gw_again:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# One install per build: bench-setup.sh signs in, adds server-everything as
# `ev` and an agent allowed `ev__echo`, and leaves its credential in $token.
start() {
  bin=$1 data=$2
  mkdir -p "$data"
  source tests/bench-setup.sh
  RUST_LOG=warn "$bin/warden" --data-dir "$data" serve --listen 127.0.0.1:0 > "$data/endpoint.out" 2>"$data/serve.err" &
  for _ in $(seq 100); do [ -s "$data/endpoint.out" ] && w server list 2>/dev/null | grep -q ready && break; sleep 0.2; done
  w server list 2>/dev/null | grep -q ready || { echo "bench-compare: $bin/warden did not start ev" >&2; cat "$data/serve.err" >&2; exit 1; }
}
start "$base/bin/$full" "$work/base"
gw_base=$!
url_base=$(head -1 "$work/base/endpoint.out") token_base=$token
start target/release "$work/head"
gw_head=$!
url_head=$(head -1 "$work/head/endpoint.out") token_head=$token
# REV once more, measured last in each round: how far the order alone moves
# the figures, which a difference must exceed to mean anything.
start "$base/bin/$full" "$work/again"
gw_again=$!
url_again=$(head -1 "$work/again/endpoint.out") token_again=$token
echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -sr)"
echo "baseline: $rev ($(git log -1 --format=%s "$rev" | cut -c1-72))"
echo "compared: the working tree at $(git rev-parse --short HEAD)$(git diff --quiet || echo ' with changes')"
target/release/warden-load \
  --target "at-$rev=$url_base@$token_base" --tool "at-$rev=ev__echo" \
  --target "now=$url_head@$token_head" --tool now=ev__echo \
  --target "at-$rev-again=$url_again@$token_again" --tool "at-$rev-again=ev__echo" "$@"
