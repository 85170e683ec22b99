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

.PHONY: setup build test demo bench cartridges quality clean fuzz openai-check

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS)

# One build of everything, tests included (a plain `swift build` first would make `swift test`
# build much of it again), then the tests without building.
test: setup
	$(SWIFT) build --build-tests $(TEST_FLAGS)
	CARTRIDGES_REQUIRE_MODEL=1 $(SWIFT) test --skip-build $(TEST_FLAGS)

# The official `openai` Python client (from PyPI, in a throwaway venv) against `cartridge serve`.
openai-check: build
	@scripts/openai-check.sh

# The demo: compile the demo corpus (quick settings), then ask about it without the cartridge, with
# it, and with the documents in context; then the corpus' gap closed on the demo questions
# (eval/demo-qa.jsonl: mean NLL of the reference answers, none -> in context).
DEMO := cartridges/cart-format
DEMO_QUESTIONS := "What are the first bytes of a .cart file?" \
                  "Which compression codec does the tensor payload use?" \
                  "What happens when a reader finds a newer format version?"
demo: $(BIN)/cartridge $(DEMO).cart
	@for q in $(DEMO_QUESTIONS); do \
	  echo; echo "Q: $$q"; \
	  printf '  without cartridge: '; $(BIN)/cartridge generate --chat "$$q" --max-tokens 60 2>/dev/null; \
	  printf '  with %s: ' "$(DEMO).cart"; $(BIN)/cartridge ask --cartridge $(DEMO).cart --max-tokens 60 "$$q" 2>/dev/null; \
	  printf '  with the documents in context: '; $(BIN)/cartridge ask --context $(DEMO) --max-tokens 60 "$$q" 2>/dev/null; \
	done
	@echo; printf 'demo corpus, '; $(BIN)/cartridge eval --qa eval/demo-qa.jsonl --docs $(DEMO) --cartridge $(DEMO).cart 2>/dev/null | tail -1

# Batch builds: every folder CARTRIDGES_DIR/NAME/ becomes CARTRIDGES_DIR/NAME.cart. A cartridge is
# compiled again only when its build key changes: the documents' contents, COMPILE_FLAGS (default:
# quick) or the compiler's version (scripts/cartridge-key.sh), never because a binary was relinked.
# Keys and work directories live in CARTRIDGES_DIR/.work/, which no glob of source folders matches;
# an interrupted compile resumes there, a compile for another key starts afresh.
CARTRIDGES_DIR ?= cartridges
COMPILE_FLAGS ?= --quick
CARTRIDGE_COMPILE ?= $(BIN)/cartridge-compile
CART_WORK := $(CARTRIDGES_DIR)/.work
CART_SOURCES := $(filter-out %.work/ %.cart/,$(wildcard $(CARTRIDGES_DIR)/*/))
CARTS := $(patsubst %/,%.cart,$(CART_SOURCES))
SWIFT_SOURCES := $(shell find Sources -name '*.swift') Package.swift

$(BIN)/cartridge-compile $(BIN)/cartridge: $(SWIFT_SOURCES) | setup
	$(SWIFT) build $(BUILD_FLAGS)
	@touch $(BIN)/cartridge-compile $(BIN)/cartridge

# The key file is rewritten only when its text changes, so its time stamp moves only then.
$(CART_WORK)/%.key: FORCE | $(CARTRIDGE_COMPILE)
	@mkdir -p $(CART_WORK)
	@scripts/cartridge-key.sh $(CARTRIDGES_DIR)/$* $(CARTRIDGE_COMPILE) "$(COMPILE_FLAGS)" > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi

$(CARTRIDGES_DIR)/%.cart: $(CART_WORK)/%.key
	@echo "cartridges: compiling $(CARTRIDGES_DIR)/$*"
	@if ! cmp -s $< $(CART_WORK)/$*/build.key; then rm -rf $(CART_WORK)/$*; fi
	@mkdir -p $(CART_WORK)/$* && cp $< $(CART_WORK)/$*/build.key
	$(CARTRIDGE_COMPILE) $(CARTRIDGES_DIR)/$* -o $@ --work-dir $(CART_WORK)/$* $(COMPILE_FLAGS)

cartridges: $(CARTS)

.PHONY: FORCE
FORCE:
.PRECIOUS: $(CART_WORK)/%.key

bench: build
	@scripts/bench.sh

# The quality study of docs/quality.md (about an hour on 2 cores; resumes where it stopped).
quality: build
	@scripts/quality.sh

# libFuzzer on the GGUF and .cart readers, FUZZ_RUNS executions each (not part of `make test`;
# builds into .build-fuzz with the fuzzer and address sanitizers; docs/robustness.md).
FUZZ_RUNS ?= 200000
fuzz:
	FUZZ_RUNS=$(FUZZ_RUNS) scripts/fuzz.sh

clean:
	rm -rf .build
