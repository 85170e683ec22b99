# Cartridges: `make demo` runs the demo on the default model, `make test` runs the tests.
SHELL := /bin/bash
SWIFT ?= swift
# Vector code is compiled for AVX2/FMA when the CPU has them (8-wide SIMD, fused multiply-add);
# otherwise for the x86-64 baseline. Override with `make TARGET_CPU=...` (empty: baseline).
TARGET_CPU ?= $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | grep -qw avx2 && \
  grep -m1 '^flags' /proc/cpuinfo | grep -qw fma && echo haswell)
CPU_FLAGS := $(if $(TARGET_CPU),-Xswiftc -target-cpu -Xswiftc $(TARGET_CPU))
BUILD_FLAGS := -c release -Xswiftc -enable-testing $(CPU_FLAGS)
TEST_FLAGS := -c release -Xswiftc -enable-testing $(CPU_FLAGS)
export CARTRIDGES_HOME ?= $(HOME)/.cache/cartridges

# Debian's OpenBLAS 0.3.21 misdetects recent CPUs and falls back to slow SSE3 kernels; pick the
# right family from the CPU flags (the executables do the same by themselves).
CORETYPE := $(shell f=$$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null); \
  if echo "$$f" | grep -qw avx512bw; then echo SkylakeX; elif echo "$$f" | grep -qw avx2; then echo Haswell; fi)
ifneq ($(CORETYPE),)
export OPENBLAS_CORETYPE ?= $(CORETYPE)
endif

BIN := .build/release

.PHONY: setup build test demo bench cartridges quality clean

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS)

test: setup
	$(SWIFT) build $(TEST_FLAGS)
	CARTRIDGES_REQUIRE_MODEL=1 $(SWIFT) test $(TEST_FLAGS)

# The demo: compile the demo corpus (quick settings), then ask about it with and without the cartridge.
DEMO := cartridges/cart-format
DEMO_QUESTIONS := "What are the first bytes of a .cart file?" \
                  "Which compression codec does the tensor payload use?" \
                  "What happens when a reader finds a newer format version?"
demo: $(BIN)/cartridge $(DEMO).cart
	@for q in $(DEMO_QUESTIONS); do \
	  echo; echo "Q: $$q"; \
	  printf '  without cartridge: '; $(BIN)/cartridge generate --chat "$$q" --max-tokens 60 2>/dev/null; \
	  printf '  with %s: ' "$(DEMO).cart"; $(BIN)/cartridge ask --cartridge $(DEMO).cart --max-tokens 60 "$$q" 2>/dev/null; \
	done

# Batch builds: every folder cartridges/NAME/ becomes cartridges/NAME.cart, rebuilt when a file in
# the folder or the compiler changes. Compile settings: COMPILE_FLAGS (default: quick).
COMPILE_FLAGS ?= --quick
CARTS := $(patsubst %/,%.cart,$(wildcard cartridges/*/))
SWIFT_SOURCES := $(shell find Sources -name '*.swift') Package.swift

$(BIN)/cartridge-compile $(BIN)/cartridge: $(SWIFT_SOURCES) | setup
	$(SWIFT) build $(BUILD_FLAGS)
	@touch $(BIN)/cartridge-compile $(BIN)/cartridge

.SECONDEXPANSION:
cartridges/%.cart: $$(shell find cartridges/$$* -type f 2>/dev/null) $(BIN)/cartridge-compile
	@# a finished cartridge's work directory belongs to the old inputs; an unfinished one is resumed
	@if [ -f $@ ]; then rm -rf $@.work; fi
	$(BIN)/cartridge-compile cartridges/$* -o $@ $(COMPILE_FLAGS)

cartridges: $(CARTS)

bench: build
	@scripts/bench.sh

# The quality study of docs/quality.md (about an hour on 2 cores; resumes where it stopped).
quality: build
	@scripts/quality.sh

clean:
	rm -rf .build
