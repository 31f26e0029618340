"""Shared helpers for the elementwise and pooling tests: random uint8 data and float references."""
import torch

import qtorch


def random_u8(shape, channels_last: bool = False) -> torch.Tensor:
    x = torch.randint(0, 256, shape, dtype=torch.uint8)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def random_params():
    """A scale and zero point typical of activations."""
    return float(torch.empty(()).uniform_(0.005, 0.1)), int(torch.randint(0, 256, ()))


def dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    return (q.to(torch.float32) - zero_point) * scale


def quantize(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """Float reference of quantization: round half to even, clamp to 0..255."""
    return torch.clamp(torch.round(x / scale) + zero_point, 0, 255).to(torch.uint8)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int((a.to(torch.int32) - b.to(torch.int32)).abs().max()) if a.numel() else 0


def native_qtensor(q: torch.Tensor, scale: float, zero_point: int):
    """Torch's own quantized tensor with the same integers (call under the `native` fixture)."""
    return torch._make_per_tensor_quantized_tensor(q, scale, zero_point)


def same_on_every_isa(fn):
    """fn() on every kernel path; asserts all results equal the scalar path's and returns it."""
    results = {}
    for isa in qtorch.supported_isas():
        with qtorch.kernel_isa_scope(isa):
            results[isa] = fn()
    reference = results["scalar"]
    for isa, out in results.items():
        assert torch.equal(out, reference), f"{isa} differs from scalar"
    return reference
