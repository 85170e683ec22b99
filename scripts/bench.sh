#!/usr/bin/env bash
# `make bench`: speed figures (benchmarks, not tests), each beside an anchor measured in the same run.
#   - OpenBLAS sgemm peak on this machine (2 threads)
#   - inference: prompt processing (512 tokens) and generation (128 tokens), ours vs llama.cpp
# llama.cpp comes from llama-cpp-python, built once into $CARTRIDGES_HOME/llama-venv (several
# minutes the first time); when it cannot be built, our figures are printed alone.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CARTRIDGES_HOME:-$HOME/.cache/cartridges}"
MODEL="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
BIN=.build/release
THREADS="${BENCH_THREADS:-2}"
OUT="${BENCH_OUT:-bench-results}"
mkdir -p "$OUT"

echo "== sgemm peak"
$BIN/cartridge-bench sgemm | tee "$OUT/sgemm.txt"

echo "== inference (pp 512, tg 128, $THREADS threads)"
$BIN/cartridge-bench inference --threads "$THREADS" --json | tee "$OUT/inference-cartridges.json"

VENV="$CACHE/llama-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "(building llama-cpp-python into $VENV for the llama.cpp anchor; this takes several minutes once)"
  { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet llama-cpp-python; } \
    || echo "llama.cpp anchor unavailable: llama-cpp-python did not build"
fi
if "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  "$VENV/bin/python" scripts/bench_llamacpp.py "$MODEL" --threads "$THREADS" | tee "$OUT/inference-llamacpp.json"
  python3 - "$OUT/inference-cartridges.json" "$OUT/inference-llamacpp.json" <<'PY'
import json, sys
ours, ref = (json.load(open(p)) for p in sys.argv[1:])
print(f"{'':24}{'cartridges':>12}{'llama.cpp':>12}{'ratio':>8}")
for key, label in (("pp_tok_s", "prompt tok/s (512)"), ("tg_tok_s", "generate tok/s (128)")):
    print(f"{label:24}{ours[key]:12.1f}{ref[key]:12.1f}{ours[key] / ref[key]:8.2f}")
print(f"peak RSS (cartridges)   {ours['peak_rss_mib']:10.0f} MiB")
PY
fi

echo "== training: one optimizer step, batch 4 x 256 tokens, $THREADS threads"
for p in 256 1024; do
  $BIN/cartridge-bench train --prefix "$p" --threads "$THREADS" --json | tee "$OUT/train-p$p.json"
done
python3 - "$OUT/train-p256.json" "$OUT/train-p1024.json" <<'PY'
import json, sys
# PyTorch (HF transformers, fp32, same model and shapes) measured on this machine kind: issue figures
torch = {256: (4.54, "3.6-4.6 GiB"), 1024: (6.41, "3.6-4.6 GiB")}
print(f"{'p':>6}{'s/step':>9}{'tok/s':>8}{'GFLOP/s':>9}{'of peak':>9}{'peak RSS':>10}{'PyTorch s/step':>16}{'speed-up':>10}")
for path in sys.argv[1:]:
    r = json.load(open(path))
    t, _ = torch[r["prefix"]]
    print(f"{r['prefix']:>6}{r['seconds_per_step']:9.2f}{r['tokens_per_s']:8.0f}{r['gflop_s']:9.0f}{100 * r['fraction_of_peak']:8.0f}%"
          f"{r['peak_rss_mib']:7.0f} MiB{t:16.2f}{t / r['seconds_per_step']:10.2f}x")
PY

echo "== runtime: cartridge load, retrieval, decoding after a 512-slot cartridge vs a 4,096-token corpus in context"
$BIN/cartridge-bench runtime --json | tee "$OUT/runtime.json"

echo "== serving: one batched decoding step per batch size, short-prompt prefill"
$BIN/cartridge-bench batch | tee "$OUT/batch.txt"

echo "== serving: cartridge serve under load over loopback (8 cartridges of 128 slots, 1,024-token documents, 32 tokens per answer)"
$BIN/cartridge-bench serve --json 2>/dev/null | tee "$OUT/serve.txt"
python3 - "$OUT/serve.txt" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
one, eight = r["cartridge_1"]["tok_s"], r["cartridge_8"]["tok_s"]
print(f"8 clients vs 1 (cartridges): {eight / one:.2f}x tokens/s (target 3x)")
for c in (1, 8, 32):
    k = f"_{c}"
    if "cartridge" + k in r:
        print(f"{c:>2} clients: cartridges {r['cartridge' + k]['tok_s']:.1f} tok/s vs documents in context {r['in-context' + k]['tok_s']:.1f}"
              f" ({r['cartridge' + k]['tok_s'] / r['in-context' + k]['tok_s']:.1f}x)")
rss = r["rss_mib"]
print(f"RSS over {len(rss) * 100} requests: {rss[0]:.0f} -> {rss[-1]:.0f} MiB (max {max(rss):.0f}); errors {r['rss_errors']}")
PY
