#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets of Fuzz/ (GGUF reader and model loader, .cart reader)
# with the fuzzer and address sanitizers into .build-fuzz, then runs each for FUZZ_RUNS executions
# (default 200000) from a seed corpus. Crashing inputs are written to .build-fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${FUZZ_RUNS:-200000}
OUT=.build-fuzz/work
export CARTRIDGES_FUZZ=1 CARTRIDGES_NO_REEXEC=1
# debug build: bounds and overflow checks stay on (release builds use -Ounchecked), plus ASan
swift build --scratch-path .build-fuzz -c debug --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --product GGUFFuzzer
swift build --scratch-path .build-fuzz -c debug --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --product CartFuzzer
BIN=.build-fuzz/debug
mkdir -p "$OUT/gguf-corpus" "$OUT/cart-corpus" .build-fuzz/findings
# seeds: the gguf-py fixture, and a tiny llama model and a small cartridge that the targets write themselves
cp Tests/CartridgeModelTests/Fixtures/types.gguf "$OUT/gguf-corpus/"
CARTRIDGES_FUZZ_SEED="$OUT/gguf-corpus/tiny-llama.gguf" "$BIN/GGUFFuzzer" -runs=0 >/dev/null 2>&1 || true
test -s "$OUT/gguf-corpus/tiny-llama.gguf" || { echo "fuzz.sh: the GGUF seed was not written" >&2; exit 1; }
CARTRIDGES_FUZZ_SEED="$OUT/cart-corpus/seed.cart" "$BIN/CartFuzzer" -runs=0 >/dev/null 2>&1 || true
test -s "$OUT/cart-corpus/seed.cart" || { echo "fuzz.sh: the .cart seed was not written" >&2; exit 1; }
for target in GGUFFuzzer:gguf CartFuzzer:cart; do
  name=${target%%:*}; corpus=$OUT/${target##*:}-corpus
  echo "== $name: $RUNS runs"
  start=$(date +%s)
  set +e
  "$BIN/$name" "$corpus" -runs="$RUNS" -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix=.build-fuzz/findings/$name- -print_final_stats=1 >"$OUT/$name.log" 2>&1
  status=$?
  set -e
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|peak_rss)|ERROR|SUMMARY' "$OUT/$name.log" || true
  echo "== $name: exit $status after $(( $(date +%s) - start )) s"
  [ "$status" -eq 0 ] || { echo "fuzz.sh: $name found a crash; see $OUT/$name.log and .build-fuzz/findings/" >&2; exit 1; }
done
