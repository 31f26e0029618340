"""qtorch demo: which kernel path runs, how accurate quantization is, and how fast
qtorch is next to native torch on the same tensors."""
import statistics
import time
import warnings

import torch

import qtorch


def median_us(fn, repeats: int = 30, number: int = 20) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter_ns() - start) / number / 1e3)
    return statistics.median(samples)


def main() -> None:
    torch.set_num_threads(1)
    print(f"qtorch kernel path: {qtorch.kernel_isa()} (this CPU supports: {', '.join(qtorch.supported_isas())})")
    x = torch.randn(1, 64, 112, 112)
    scale = float(x.abs().max()) / 127.5
    q = qtorch.quantize_per_tensor(x, scale, 128, qtorch.quint8)
    err = (q.dequantize() - x).abs()
    print(f"activation 1x64x112x112: scale {scale:.4g}, max |error| {err.max():.4g} "
          f"(<= scale/2 = {scale / 2:.4g}), mean |error| {err.mean():.4g}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        native = torch.quantize_per_tensor(x, scale, 128, torch.quint8)
        same = torch.equal(native.int_repr(), q.int_repr())
        rows = [
            ("quantize", median_us(lambda: qtorch.quantize_per_tensor(x, scale, 128, qtorch.quint8)),
             median_us(lambda: torch.quantize_per_tensor(x, scale, 128, torch.quint8))),
            ("dequantize", median_us(q.dequantize), median_us(native.dequantize)),
        ]
    print(f"integers identical to torch.quantize_per_tensor: {same}")
    print(f"\n{'op (1 thread)':14s} {'qtorch us':>10s} {'native us':>10s} {'native/qtorch':>14s}")
    for name, ours, theirs in rows:
        print(f"{name:14s} {ours:10.1f} {theirs:10.1f} {theirs / ours:14.2f}")


if __name__ == "__main__":
    main()
