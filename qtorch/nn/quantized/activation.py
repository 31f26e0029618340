"""Quantized activation modules: ReLU, ReLU6 (exact clamps of the integers) and Hardswish."""
from typing import Any

import torch

from qtorch._ops import ops
from qtorch.nn.quantized._module import QuantizedModule


class SameParamsModule(QuantizedModule):
    """A quantized module whose output keeps its input's parameters (the classic semantics of relu,
    pooling and resize): setting the input parameters sets the output's too."""

    def set_input_qparams(self, scale: float, zero_point: int) -> None:
        super().set_input_qparams(scale, zero_point)
        self.scale = float(scale)
        self.zero_point = int(zero_point)

    def _missing_qparams(self) -> str:
        return (f"{type(self).__name__} holds no input quantization parameters: convert() sets them "
                f"(set_input_qparams), or call it with a qtorch.QTensor")


class ReLU(SameParamsModule):
    """max(x, 0) on uint8 integers: exact (integers below the zero point become it)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace  # accepted for compatibility; the result is a new tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_input_qparams:
            raise RuntimeError("ReLU holds no input quantization parameters: convert() sets them, "
                               "or call it with a qtorch.QTensor")
        x = self._integer_input(x)
        return self._finish(ops.relu(x, self.input_scale, self.input_zero_point, self.scale, self.zero_point))

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "ReLU":
        return cls(getattr(mod, "inplace", False))


class ReLU6(SameParamsModule):
    """min(max(x, 0), 6) on uint8 integers: exact."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_input_qparams:
            raise RuntimeError("ReLU6 holds no input quantization parameters: convert() sets them, "
                               "or call it with a qtorch.QTensor")
        x = self._integer_input(x)
        return self._finish(ops.relu6(x, self.input_scale, self.input_zero_point, self.scale, self.zero_point))

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "ReLU6":
        return cls(getattr(mod, "inplace", False))


class Hardswish(QuantizedModule):
    """x * relu6(x + 3) / 6, quantized with the module's output parameters (a per-call table)."""

    def __init__(self, scale: float = 1.0, zero_point: int = 0) -> None:
        super().__init__()
        self.scale = float(scale)
        self.zero_point = int(zero_point)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_input_qparams:
            raise RuntimeError("Hardswish holds no input quantization parameters: convert() sets them, "
                               "or call it with a qtorch.QTensor")
        x = self._integer_input(x)
        return self._finish(ops.hardswish(x, self.input_scale, self.input_zero_point, self.scale, self.zero_point))

    def extra_repr(self) -> str:
        return f"scale={self.scale}, zero_point={self.zero_point}"

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "Hardswish":
        observer = getattr(mod, "activation_post_process", None)
        if observer is None:
            raise ValueError("Hardswish.from_float needs an observed module (activation_post_process): "
                             "run prepare() and calibrate first")
        scale, zero_point = observer.calculate_qparams()
        return cls(float(scale), int(zero_point))
