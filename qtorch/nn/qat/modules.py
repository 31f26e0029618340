"""Quantization-aware-training modules: float modules whose weight goes through a fake
quantizer (``qconfig.weight()``) on every forward; ``convert`` turns them into quantized modules."""
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Linear", "Conv2d"]


def _float_part(mod: nn.Module, float_type: type) -> nn.Module:
    """The conv/linear of a fused float module (its first member), or the module itself."""
    if isinstance(mod, nn.Sequential) and len(mod) > 0 and type(mod[0]) is float_type:
        return mod[0]
    return mod


def _require_qconfig(mod: nn.Module, cls: type) -> Any:
    qconfig = getattr(mod, "qconfig", None)
    if not qconfig:
        raise ValueError(f"{cls.__name__}.from_float: the input module needs a qconfig (set module.qconfig or use prepare_qat)")
    return qconfig


class Linear(nn.Linear):
    """nn.Linear with a fake-quantized weight."""

    _FLOAT_MODULE = nn.Linear

    def __init__(self, in_features: int, out_features: int, bias: bool = True, qconfig: Optional[Any] = None,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        if not qconfig:
            raise ValueError("qconfig must be provided for a QAT module")
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.linear(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod: nn.Module, use_precomputed_fake_quant: bool = False) -> "Linear":
        qconfig = _require_qconfig(mod, cls)
        linear = _float_part(mod, nn.Linear)
        qat = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, qconfig=qconfig,
                  device=linear.weight.device, dtype=linear.weight.dtype)
        qat.weight = linear.weight
        qat.bias = linear.bias
        return qat

    def to_float(self) -> nn.Linear:
        linear = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        linear.weight = nn.Parameter(self.weight.detach())
        if self.bias is not None:
            linear.bias = nn.Parameter(self.bias.detach())
        return linear


class Conv2d(nn.Conv2d):
    """nn.Conv2d with a fake-quantized weight."""

    _FLOAT_MODULE = nn.Conv2d

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 qconfig: Optional[Any] = None, device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias, padding_mode=padding_mode, device=device, dtype=dtype)
        if not qconfig:
            raise ValueError("qconfig must be provided for a QAT module")
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod: nn.Module, use_precomputed_fake_quant: bool = False) -> "Conv2d":
        qconfig = _require_qconfig(mod, cls)
        conv = _float_part(mod, nn.Conv2d)
        qat = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                  dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
                  padding_mode=conv.padding_mode, qconfig=qconfig, device=conv.weight.device, dtype=conv.weight.dtype)
        qat.weight = conv.weight
        qat.bias = conv.bias
        return qat

    def to_float(self) -> nn.Conv2d:
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                         self.dilation, self.groups, self.bias is not None, self.padding_mode)
        conv.weight = nn.Parameter(self.weight.detach())
        if self.bias is not None:
            conv.bias = nn.Parameter(self.bias.detach())
        return conv
