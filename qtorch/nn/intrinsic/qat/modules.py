"""Fused quantization-aware-training modules: conv/linear (+ batch norm) (+ ReLU) with a
fake-quantized weight. ConvBn2d keeps batch norm's statistics (which can be frozen) and
trains on the folded weight, so the weight that gets quantized is the one convert folds."""
import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import init

from qtorch.nn.qat.modules import Conv2d as QATConv2d
from qtorch.nn.qat.modules import Linear as QATLinear

__all__ = ["LinearReLU", "ConvReLU2d", "ConvBn2d", "ConvBnReLU2d", "freeze_bn_stats", "update_bn_stats"]


class LinearReLU(QATLinear):
    """QAT Linear followed by ReLU."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(input))

    def to_float(self) -> nn.Module:
        from qtorch.nn.intrinsic.modules import LinearReLU as FloatLinearReLU

        return FloatLinearReLU(super().to_float(), nn.ReLU())


class ConvReLU2d(QATConv2d):
    """QAT Conv2d followed by ReLU."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(input))

    def to_float(self) -> nn.Module:
        from qtorch.nn.intrinsic.modules import ConvReLU2d as FloatConvReLU2d

        return FloatConvReLU2d(super().to_float(), nn.ReLU())


class ConvBn2d(nn.Conv2d):
    """Conv2d + BatchNorm2d for QAT. The conv runs with the weight scaled by
    ``bn.weight / sqrt(running_var + eps)`` and fake-quantized, its output is scaled back and
    goes through ``self.bn`` (batch statistics while training, unless frozen)."""

    _with_relu = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = False, padding_mode: str = "zeros",
                 eps: float = 1e-05, momentum: float = 0.1, freeze_bn: bool = False, qconfig: Optional[Any] = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, False, padding_mode)
        if not qconfig:
            raise ValueError("qconfig must be provided for a QAT module")
        self.qconfig = qconfig
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = nn.BatchNorm2d(out_channels, eps, momentum, True, True)
        self.weight_fake_quant = qconfig.weight()
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_bn_parameters()
        if self.training and not freeze_bn:
            self.update_bn_stats()
        else:
            self.freeze_bn_stats()

    def reset_running_stats(self) -> None:
        self.bn.reset_running_stats()

    def reset_bn_parameters(self) -> None:
        self.bn.reset_running_stats()
        init.uniform_(self.bn.weight)
        init.zeros_(self.bn.bias)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def update_bn_stats(self) -> "ConvBn2d":
        self.freeze_bn = False
        self.bn.training = True
        return self

    def freeze_bn_stats(self) -> "ConvBn2d":
        self.freeze_bn = True
        self.bn.training = False
        return self

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        running_std = torch.sqrt(self.bn.running_var + self.bn.eps)
        scale_factor = self.bn.weight / running_std
        scaled_weight = self.weight_fake_quant(self.weight * scale_factor.reshape(-1, 1, 1, 1))
        zero_bias = torch.zeros(self.out_channels, device=scaled_weight.device, dtype=input.dtype)
        conv = self._conv_forward(input, scaled_weight, zero_bias)
        conv_orig = conv / scale_factor.reshape(1, -1, 1, 1)
        if self.bias is not None:
            conv_orig = conv_orig + self.bias.reshape(1, -1, 1, 1)
        out = self.bn(conv_orig)
        return F.relu(out) if self._with_relu else out

    def train(self, mode: bool = True) -> "ConvBn2d":
        # A frozen batch norm stays in eval mode when the model goes back to training.
        self.training = mode
        if not self.freeze_bn:
            for module in self.children():
                module.train(mode)
        return self

    @classmethod
    def from_float(cls, mod: nn.Module, use_precomputed_fake_quant: bool = False) -> "ConvBn2d":
        qconfig = getattr(mod, "qconfig", None)
        if not qconfig:
            raise ValueError(f"{cls.__name__}.from_float: the input module needs a qconfig")
        conv, bn = mod[0], mod[1]
        qat = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                  conv.groups, conv.bias is not None, conv.padding_mode, bn.eps, bn.momentum, False, qconfig)
        qat.weight = conv.weight
        qat.bias = conv.bias
        qat.bn.weight = bn.weight
        qat.bn.bias = bn.bias
        qat.bn.running_mean = bn.running_mean
        qat.bn.running_var = bn.running_var
        qat.bn.num_batches_tracked = bn.num_batches_tracked
        return qat

    def folded_conv(self) -> QATConv2d:
        """The QAT conv with batch norm folded into weight and bias (what convert quantizes);
        keeps this module's weight fake quantizer, whose scale was trained on the folded weight."""
        from torch.nn.utils import fuse_conv_bn_weights

        target = ConvReLU2d if self._with_relu else QATConv2d
        conv = target(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding, self.dilation,
                      self.groups, True, self.padding_mode, qconfig=self.qconfig)
        weight, bias = fuse_conv_bn_weights(self.weight, self.bias, self.bn.running_mean, self.bn.running_var,
                                            self.bn.eps, self.bn.weight, self.bn.bias)
        conv.weight = nn.Parameter(weight.detach())
        conv.bias = nn.Parameter(bias.detach())
        conv.weight_fake_quant = self.weight_fake_quant
        return conv

    def to_float(self) -> nn.Module:
        from torch.nn.utils import fuse_conv_bn_eval

        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                         self.dilation, self.groups, self.bias is not None, self.padding_mode)
        conv.weight = nn.Parameter(self.weight.detach())
        if self.bias is not None:
            conv.bias = nn.Parameter(self.bias.detach())
        bn = self.bn.eval()
        fused = fuse_conv_bn_eval(conv.eval(), bn)
        if self._with_relu:
            from qtorch.nn.intrinsic.modules import ConvReLU2d as FloatConvReLU2d

            return FloatConvReLU2d(fused, nn.ReLU())
        return fused


class ConvBnReLU2d(ConvBn2d):
    """ConvBn2d followed by ReLU."""

    _with_relu = True

    @classmethod
    def from_float(cls, mod: nn.Module, use_precomputed_fake_quant: bool = False) -> "ConvBnReLU2d":
        return super().from_float(mod)  # type: ignore[return-value]


def freeze_bn_stats(mod: nn.Module) -> None:
    """``model.apply(freeze_bn_stats)``: batch norm uses (and stops updating) running statistics."""
    if isinstance(mod, ConvBn2d) or (hasattr(mod, "freeze_bn_stats") and hasattr(mod, "bn")):
        mod.freeze_bn_stats()


def update_bn_stats(mod: nn.Module) -> None:
    """``model.apply(update_bn_stats)``: batch norm trains on batch statistics again."""
    if isinstance(mod, ConvBn2d) or (hasattr(mod, "update_bn_stats") and hasattr(mod, "bn")):
        mod.update_bn_stats()
