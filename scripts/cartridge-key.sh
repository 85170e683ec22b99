#!/usr/bin/env bash
# Prints the build key of one cartridge: what its .cart depends on, as text.
#   scripts/cartridge-key.sh SOURCE_DIR COMPILER "COMPILE_FLAGS"
# The key holds the compiler's version (not its binary: a relinked compiler is the same compiler),
# the compile settings, and the name and SHA-256 of every document the compiler reads (hidden files
# and folders are not documents). `make cartridges` rebuilds a cartridge when its key changes.
set -euo pipefail
dir="$1" compiler="$2" flags="$3"
[ -d "$dir" ] || { echo "cartridge-key: no folder $dir" >&2; exit 1; }
echo "compiler: $("$compiler" --version)"
echo "flags: $flags"
(cd "$dir" && find . -type f -not -path '*/.*' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
