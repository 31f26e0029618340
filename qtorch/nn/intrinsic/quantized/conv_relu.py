"""Quantized Conv2d with ReLU fused into the kernel's epilogue."""
from typing import Any

import torch

from qtorch.nn.quantized.conv import Conv2d

__all__ = ["ConvReLU2d"]


class ConvReLU2d(Conv2d):
    """Conv2d followed by ReLU, as one kernel (the classic ``torch.ao.nn.intrinsic.quantized.ConvReLU2d``).
    from_float takes a fused float module ending in ReLU (Conv+ReLU, Conv+BN+ReLU) or its QAT form."""

    _RELU = True

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._conv(input, True)

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "ConvReLU2d":
        return super().from_float(mod, use_precomputed_fake_quant)
