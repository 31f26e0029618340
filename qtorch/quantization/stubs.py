"""Markers of the quantized region: QuantStub (float -> quantized), DeQuantStub (back to float)."""
from typing import Any, Optional

import torch
from torch import nn

__all__ = ["QuantStub", "DeQuantStub", "QuantWrapper"]


class QuantStub(nn.Module):
    """Identity before calibration; ``convert`` swaps it for ``qtorch.nn.quantized.Quantize``
    with the scale and zero point its observer saw."""

    def __init__(self, qconfig: Optional[Any] = None) -> None:
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class DeQuantStub(nn.Module):
    """Identity before calibration; ``convert`` swaps it for ``qtorch.nn.quantized.DeQuantize``."""

    def __init__(self, qconfig: Optional[Any] = None) -> None:
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class QuantWrapper(nn.Module):
    """Wraps a float module between a QuantStub and a DeQuantStub (the module's qconfig goes
    to the stubs too)."""

    quant: QuantStub
    dequant: DeQuantStub
    module: nn.Module

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        qconfig = getattr(module, "qconfig", None)
        self.add_module("quant", QuantStub(qconfig))
        self.add_module("dequant", DeQuantStub(qconfig))
        self.add_module("module", module)
        self.train(module.training)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        X = self.quant(X)
        X = self.module(X)
        return self.dequant(X)
