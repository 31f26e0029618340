# The two commands a newcomer needs:  make demo  and  make test.
# Each creates .venv if missing, installs what it needs, builds, and runs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.qtorch-deps
BUILT := $(VENV)/.qtorch-built
SOURCES := $(shell find csrc -name '*.cc' -o -name '*.cpp' -o -name '*.h') setup.py
BUILD := build
ARM_SYSROOT := /usr/aarch64-linux-gnu
QEMU := qemu-aarch64 -L $(ARM_SYSROOT)

.PHONY: demo test build test-python test-cpp test-arm arm-toolchain cpp-example test-cpp-example bench bench-quick clean \
	test-sanitize test-sanitize-kernels test-sanitize-python fuzz test-slow

demo: build
	$(PY) -m examples.demo

# cpp-example first: tests/test_cpp_example.py (part of test-python) runs the program it builds.
test: build cpp-example test-python test-cpp test-arm

# torch==2.13.0 is pinned: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

build: $(BUILT)

# Rebuilt only when a C++ source changes: an editable install compiles from scratch.
$(BUILT): $(STAMP) $(SOURCES)
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $(BUILT)

# A crash in the fuzz tests leaves its last call's arguments in $(BUILD)/fuzz_last_call.txt.
test-python: build
	@mkdir -p $(BUILD)
	QTORCH_FUZZ_LAST_CALL=$(BUILD)/fuzz_last_call.txt $(PY) -m pytest -q || \
	  { echo "last fuzz call:"; cat $(BUILD)/fuzz_last_call.txt 2>/dev/null; exit 1; }

test-cpp:
	cmake -S . -B $(BUILD)/kernels -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
	ninja -C $(BUILD)/kernels
	$(BUILD)/kernels/kernel_tests

# examples/cpp/run_model against the libtorch inside the installed torch wheel. Only the runner
# is compiled: it loads the ops library setup.py built (qtorch/_C*.so) at run time.
cpp-example: build
	cmake -S . -B $(BUILD)/torch -G Ninja -DCMAKE_BUILD_TYPE=Release -DQTORCH_BUILD_TORCH_PARTS=ON \
	  -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')" > /dev/null
	ninja -C $(BUILD)/torch run_model

test-cpp-example: cpp-example
	$(PY) -m pytest -q tests/test_cpp_example.py

# The aarch64 cross toolchain and qemu come from Debian's packages (installed as root when missing).
arm-toolchain:
	@if ! command -v aarch64-linux-gnu-g++ > /dev/null || ! command -v qemu-aarch64 > /dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++-aarch64-linux-gnu qemu-user > /dev/null; \
	  else \
	    echo "install g++-aarch64-linux-gnu and qemu-user (as root: apt-get install g++-aarch64-linux-gnu qemu-user)"; exit 1; \
	  fi; \
	fi

# NEON kernels under emulation: once with dot-product instructions, once without (cortex-a72).
test-arm: arm-toolchain
	cmake -S . -B $(BUILD)/kernels-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake > /dev/null
	ninja -C $(BUILD)/kernels-aarch64
	$(QEMU) $(BUILD)/kernels-aarch64/kernel_tests
	$(QEMU) -cpu cortex-a72 $(BUILD)/kernels-aarch64/kernel_tests

# Kernels and their C++ tests, then the extension (a separate copy in $(BUILD)/sanitize, loaded
# through QTORCH_LIBRARY) under the Python suite, under AddressSanitizer and UBSan: any report fails.
# - python is not instrumented, so libasan is preloaded; libstdc++ right after it, because python does
#   not link it and ASan resolves the real __cxa_throw when it starts (without it, the first C++
#   exception of torch aborts in asan_interceptors.cpp "real___cxa_throw != 0").
# - Python itself leaks by design: leak detection off.
# - allocator_may_return_null + max_allocation_size_mb: a huge allocation (the fuzzer asks for them)
#   fails as torch's allocator error, as under the normal build's address-space cap (which ASan's
#   terabytes of shadow memory rule out); a failed operator new in qtorch still aborts: a finding.
# - The suite minus the two training runs on digits and the fresh-process deploy test (minutes,
#   no op coverage of their own); the property and fuzz tests with more examples than make test.
SANITIZE := address,undefined,float-cast-overflow
SANITIZE_TESTS := tests -k "not digits and not fresh_processes"
SANITIZE_ENV := ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:max_allocation_size_mb=8192 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LD_PRELOAD="$$($(CXX) -print-file-name=libasan.so) $$($(CXX) -print-file-name=libstdc++.so)"

test-sanitize: test-sanitize-kernels test-sanitize-python

test-sanitize-kernels:
	cmake -S . -B $(BUILD)/kernels-sanitize -G Ninja -DQTORCH_SANITIZE=$(SANITIZE) > /dev/null
	ninja -C $(BUILD)/kernels-sanitize
	$(SANITIZE_ENV) $(BUILD)/kernels-sanitize/kernel_tests

test-sanitize-python: $(STAMP)
	QTORCH_SANITIZE=$(SANITIZE) $(PY) setup.py -q build_ext --build-lib $(BUILD)/sanitize/lib \
	  --build-temp $(BUILD)/sanitize/temp
	$(SANITIZE_ENV) QTORCH_LIBRARY=$$(ls $(BUILD)/sanitize/lib/qtorch/_C*.so) HYPOTHESIS_PROFILE=sanitize \
	  QTORCH_FUZZ_LAST_CALL=$(BUILD)/sanitize/fuzz_last_call.txt $(PY) -m pytest -q -p no:cacheprovider \
	  $(SANITIZE_TESTS) || { echo "last fuzz call:"; cat $(BUILD)/sanitize/fuzz_last_call.txt 2>/dev/null; exit 1; }

# The long fuzzing and property run (the CI profile runs 15 examples a test, test-sanitize 40): 600
# examples a test, tens of minutes on 2 cores.
fuzz: build
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/test_fuzz.py tests/test_properties.py

# Tests past 2^31 elements: quantize, dequantize, add, cat on 2^31+5 elements, on 1 and 2 threads.
# Measured: 11.3 GB peak resident, 40 s on the 2-core machine.
test-slow: build
	QTORCH_BIG_TENSORS=1 $(PY) -m pytest -q -m slow tests/test_stress.py

# The `bench` extra of setup.py, without reinstalling qtorch: fbgemm-gpu-cpu 1.8.0 (the release that
# imports beside torch 2.13.0) is a second peer of the row-wise cases. --no-deps: its only requirement
# is numpy (already installed), and nothing may replace the pinned torch.
BENCH_STAMP := $(VENV)/.qtorch-bench
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q --no-deps fbgemm-gpu-cpu==1.8.0
	$(PY) -m pip install -q matplotlib
	touch $(BENCH_STAMP)

bench: build $(BENCH_STAMP)
	$(PY) -m benchmarks

bench-quick: build
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(BUILD) qtorch/_C*.so qtorch/_op_bindings*.so *.egg-info
