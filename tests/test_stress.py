"""Threads, thread counts, memory and tensors past 2^31 elements.

- One converted model called from 4 Python threads at once gives the serial results.
- torch.set_num_threads between calls changes nothing in the results.
- 10,000 calls of a converted model leave resident memory flat.
- quantize, dequantize, add and cat index with 64-bit offsets: checked on a
  tensor of 2^31 + 5 elements (marked slow: about 11 GB peak and a minute or two on 2 cores;
  run with QTORCH_BIG_TENSORS=1 or -m slow; make test-slow runs it).
"""
import gc
import os
import threading

import pytest
import torch

import qtorch
from _deploy_cases import MODEL_NAMES, convert, fresh_input, missing

ops = torch.ops.qtorch

# Cheap converted models: the hand-built static/dynamic Linear chain always, the conv nets
# once the workflow converts them.
THREAD_MODELS = [name for name in ["direct", "mlp", "resnet", "mobilenet", "lstm"] if name in MODEL_NAMES]


def converted(name):
    reason = missing(name)
    if reason:
        pytest.skip(reason)
    model, example = convert(name, seed=1234)
    return model, example


def run(model, x):
    with torch.inference_mode():
        return model(x)


@pytest.mark.parametrize("name", THREAD_MODELS)
def test_four_python_threads_give_the_serial_results(name):
    model, example = converted(name)
    inputs = [fresh_input(example) for _ in range(16)]
    serial = [run(model, x) for x in inputs]
    results = [[None] * len(inputs) for _ in range(4)]
    errors = []
    start = threading.Barrier(4)

    def worker(t):
        try:
            start.wait()
            # Each thread walks the inputs in its own order, so calls overlap in every combination.
            for i in range(len(inputs)):
                j = (i * (2 * t + 1) + t) % len(inputs)  # odd multiplier: a permutation of 16
                results[t][j] = run(model, inputs[j])
        except Exception as e:  # noqa: BLE001: reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for per_thread in results:
        for want, got in zip(serial, per_thread):
            assert torch.equal(want, got)


@pytest.mark.parametrize("name", THREAD_MODELS)
def test_thread_count_changes_nothing(name):
    model, example = converted(name)
    x = fresh_input(example) if example.dim() != 2 else torch.randn(300, example.shape[1])
    threads = torch.get_num_threads()
    try:
        results = []
        for n in [1, 2, 3, 1, 2]:
            torch.set_num_threads(n)
            results.append(run(model, x))
    finally:
        torch.set_num_threads(threads)
    for got in results[1:]:
        assert torch.equal(results[0], got)


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif("ASAN_OPTIONS" in os.environ,
                    reason="AddressSanitizer keeps freed blocks in a quarantine (up to 256 MB): RSS grows by design")
@pytest.mark.parametrize("name", [name for name in ["direct", "mlp"] if name in MODEL_NAMES])
def test_ten_thousand_calls_leave_memory_flat(name):
    model, example = converted(name)
    x = fresh_input(example)
    for _ in range(500):  # warm up allocator caches and thread pools
        run(model, x)
    gc.collect()
    before = resident_bytes()
    for _ in range(10_000):
        run(model, x)
    gc.collect()
    grown = resident_bytes() - before
    # A leak of 100 bytes per call shows as 1 MB (measured growth without a leak: 0).
    assert grown < 1 << 20, f"resident memory grew by {grown / 2**20:.1f} MiB over 10,000 calls"


# ---------- past 2^31 elements ----------

BIG = 2 ** 31 + 5
big_tensors = pytest.mark.skipif(not os.environ.get("QTORCH_BIG_TENSORS"),
                                 reason="needs ~11 GB and minutes: set QTORCH_BIG_TENSORS=1 (make test-slow)")


def check_tail(got, want_fn, what):
    """Compares the first, middle and last 4096 elements (past 2^31) with a per-element definition."""
    for start in (0, 2 ** 30, got.numel() - 4096):  # the last window straddles 2^31
        idx = torch.arange(start, start + 4096)
        assert torch.equal(got[idx], want_fn(idx)), f"{what}: wrong at offsets from {start}"


@pytest.mark.slow
@big_tensors
@pytest.mark.parametrize("threads", [1, 2])
def test_quantize_dequantize_past_2_31_elements(threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # one thread: one kernel call spans all 2^31+ elements
    try:
        pattern = lambda idx: ((idx % 251) - 125).float() * 0.5  # noqa: E731
        # A period of 251 (prime): an offset wrapped at 2^31 or 2^32 reads a different value.
        x = torch.empty(BIG, dtype=torch.float32)
        period_chunk = pattern(torch.arange(251 << 18))
        for start in range(0, BIG, period_chunk.numel()):
            stop = min(BIG, start + period_chunk.numel())
            x[start:stop] = period_chunk[: stop - start]
        q = ops.quantize_per_tensor(x, 0.5, 128, torch.uint8)
        del x
        check_tail(q, lambda idx: ((idx % 251) - 125 + 128).to(torch.uint8), "quantize_per_tensor")
        y = ops.dequantize_per_tensor(q, 0.5, 128)
        check_tail(y, pattern, "dequantize_per_tensor")
        del y
        s = ops.add(q, 0.5, 128, q, 0.5, 128, 1.0, 128)
        check_tail(s, lambda idx: (((idx % 251) - 125) + 128).to(torch.uint8), "add")
        del s
        half = q[: BIG // 2]
        c = ops.cat([half, q[BIG // 2:]], [0.5, 0.5], [128, 128], 0, 0.5, 128)
        assert c.numel() == BIG
        check_tail(c, lambda idx: ((idx % 251) - 125 + 128).to(torch.uint8), "cat")
    finally:
        torch.set_num_threads(previous)
