"""Quantize (float -> uint8 with the module's parameters) and DeQuantize (uint8 -> float with its input's)."""
from typing import Any

import torch

from qtorch._dtypes import storage_dtype
from qtorch._ops import ops
from qtorch.nn.quantized._module import QuantizedModule


class Quantize(QuantizedModule):
    """Quantizes float32 input with ``scale``/``zero_point`` to ``dtype`` (a plain integer tensor)."""

    dtype: torch.dtype

    def __init__(self, scale: float, zero_point: int, dtype: Any = torch.uint8) -> None:
        super().__init__()
        self.scale = float(scale)
        self.zero_point = int(zero_point)
        self.dtype = storage_dtype(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError("Quantize takes a floating-point tensor")
        return ops.quantize_per_tensor(x.float(), self.scale, self.zero_point, self.dtype)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, zero_point={self.zero_point}, dtype={self.dtype}"

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "Quantize":
        observer = getattr(mod, "activation_post_process", None)
        if observer is None:
            raise ValueError("Quantize.from_float needs an observed module (activation_post_process): "
                             "run prepare() and calibrate first")
        scale, zero_point = observer.calculate_qparams()
        return cls(float(scale), int(zero_point), getattr(observer, "dtype", torch.uint8))


class DeQuantize(QuantizedModule):
    """Dequantizes integer input with its input parameters; float input passes through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point():
            return x
        if not self.has_input_qparams:
            raise RuntimeError("DeQuantize holds no input quantization parameters: convert() sets them, "
                               "or call it with a qtorch.QTensor")
        return ops.dequantize_per_tensor(x, self.input_scale, self.input_zero_point)

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "DeQuantize":
        return cls()
