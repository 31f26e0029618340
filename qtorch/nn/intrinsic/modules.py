"""Fused float modules: sequences that ``fuse_modules`` groups so that ``convert`` replaces each
group with one quantized module (conv/linear with batch norm folded and ReLU in the epilogue)."""
import torch
from torch import nn

__all__ = ["_FusedModule", "ConvReLU2d", "ConvBn2d", "ConvBnReLU2d", "LinearReLU", "LinearBn1d", "BNReLU2d"]


class _FusedModule(nn.Sequential):
    """A sequence of modules that runs like nn.Sequential; the first checks its members' types."""

    _PARTS: tuple = ()

    def __init__(self, *modules: nn.Module) -> None:
        expected = self._PARTS
        if len(modules) != len(expected) or not all(type(m) is t for m, t in zip(modules, expected)):
            got = ", ".join(type(m).__name__ for m in modules)
            want = ", ".join(t.__name__ for t in expected)
            raise TypeError(f"{type(self).__name__} takes ({want}), got ({got})")
        super().__init__(*modules)


class ConvReLU2d(_FusedModule):
    """Conv2d followed by ReLU."""

    _PARTS = (nn.Conv2d, nn.ReLU)


class ConvBn2d(_FusedModule):
    """Conv2d followed by BatchNorm2d (kept separate for quantization-aware training)."""

    _PARTS = (nn.Conv2d, nn.BatchNorm2d)


class ConvBnReLU2d(_FusedModule):
    """Conv2d, BatchNorm2d, ReLU (kept separate for quantization-aware training)."""

    _PARTS = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU)


class LinearReLU(_FusedModule):
    """Linear followed by ReLU."""

    _PARTS = (nn.Linear, nn.ReLU)


class LinearBn1d(_FusedModule):
    """Linear followed by BatchNorm1d (training-mode fusion; eval-mode fusion folds it)."""

    _PARTS = (nn.Linear, nn.BatchNorm1d)


class BNReLU2d(_FusedModule):
    """BatchNorm2d followed by ReLU."""

    _PARTS = (nn.BatchNorm2d, nn.ReLU)
