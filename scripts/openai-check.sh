#!/usr/bin/env bash
# The official `openai` Python client against `cartridge serve`: a cartridge from a small
# document pushed to a fresh registry, a server on a free loopback port with a token, and
# scripts/openai-check.py. Needs the release build and the default model (make setup).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
work=$(mktemp -d)
server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# the client in a throwaway venv (or a --target folder where venv is missing)
if python3 -m venv "$work/venv" 2>/dev/null; then
  py="$work/venv/bin/python"
  "$py" -m pip install --quiet --disable-pip-version-check 'openai>=1.40,<3'
else
  python3 -m pip install --quiet --disable-pip-version-check --target "$work/py" 'openai>=1.40,<3'
  py=python3
  export PYTHONPATH="$work/py"
fi

mkdir -p "$work/docs"
cat > "$work/docs/tides.txt" <<'TEXT'
The lighthouse keeper wrote down the tides, the ships and the weather of every night in a red notebook.
High tide came twice a day, and the spring tides of the full moon flooded the lower steps.
TEXT
"$BIN/cartridge" init "$work/docs" -o "$work/tides.cart" --size 32 2>/dev/null
"$BIN/cartridge" registry push --registry "$work/registry" tides "$work/tides.cart" 2>/dev/null

"$BIN/cartridge" serve --registry "$work/registry" --port 0 --token check-token > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 300); do
  grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/serve.out" | head -1)
[[ -n "$url" ]] || { echo "the server did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
"$py" scripts/openai-check.py "$url" tides
