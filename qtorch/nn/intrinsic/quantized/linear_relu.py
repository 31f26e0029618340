"""Quantized Linear followed by ReLU, the ReLU fused into the requantization."""
from typing import Any, Tuple

import torch

from qtorch.nn.quantized.linear import Linear


def _float_modules() -> Tuple[Any, ...]:
    modules: Tuple[Any, ...] = (torch.ao.nn.intrinsic.LinearReLU,)
    try:  # qtorch's own fused module, where the workflow defines one
        from qtorch.nn.intrinsic import LinearReLU as QtorchLinearReLU  # type: ignore[attr-defined]

        modules = modules + (QtorchLinearReLU,)
    except ImportError:
        pass
    return modules


class LinearReLU(Linear):
    r"""``relu(Linear(x))`` on uint8 tensors; mirrors ``torch.ao.nn.intrinsic.quantized.LinearReLU``."""

    _FLOAT_MODULE: Any = None

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = torch.qint8) -> None:
        super().__init__(in_features, out_features, bias, dtype)
        self._relu = True

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "LinearReLU":
        if cls._FLOAT_MODULE is None:
            cls._FLOAT_MODULE = _float_modules()
        return super().from_float(mod, use_precomputed_fake_quant)  # type: ignore[return-value]
