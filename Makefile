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

.PHONY: setup build test demo bench clean

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS)

test: setup
	$(SWIFT) build $(TEST_FLAGS)
	CARTRIDGES_REQUIRE_MODEL=1 $(SWIFT) test $(TEST_FLAGS)

demo: build
	@echo '$$ cartridge generate --chat "What is the capital of France?"'
	@$(BIN)/cartridge generate --chat "What is the capital of France?" --max-tokens 64

bench: build
	@scripts/bench.sh

clean:
	rm -rf .build
