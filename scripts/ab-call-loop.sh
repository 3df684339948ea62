#!/usr/bin/env bash
# Interleaved wall-clock comparison of whole calls between two revisions:
#   scripts/ab-call-loop.sh BASE_REV [CALLS] [ROUNDS]
# Builds benches/examples/call_loop at BASE_REV (in a temporary worktree
# with its own target directory: two checkouts sharing one target directory
# can pick up each other's artifacts) and at the working tree, then runs
# them alternately, ROUNDS times each, CALLS calls per run, and prints the
# nanoseconds per call of every run. This VM's speed drifts by up to 2x over
# seconds; alternating runs lets a round compare like with like.
# AB_TARGET_DIR, when set, is the target directory for the base build (kept
# between runs, so a second comparison does not rebuild the dependencies).
set -euo pipefail
base=${1:?base revision}
calls=${2:-20000}
rounds=${3:-6}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/sipact-ab.XXXXXX)
cleanup() { git -C "$root" worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git -C "$root" worktree add --detach "$work/src" "$base" >/dev/null
base_target=${AB_TARGET_DIR:-$work/target}
(cd "$work/src" && CARGO_TARGET_DIR="$base_target" cargo build --release -q -p sipact-benches --example call_loop)
(cd "$root" && cargo build --release -q -p sipact-benches --example call_loop)
cp "$base_target/release/examples/call_loop" "$work/base"
cp "$root/target/release/examples/call_loop" "$work/head"
echo "ns per call, $calls calls per run; base = $base, head = working tree"
for i in $(seq "$rounds"); do
  line="round $i:"
  for b in base head; do
    s=$(date +%s%N); "$work/$b" "$calls" >/dev/null; e=$(date +%s%N)
    line="$line $b $(( (e - s) / calls ))"
  done
  echo "$line"
done
