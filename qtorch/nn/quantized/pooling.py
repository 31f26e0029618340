"""Quantized pooling modules: MaxPool2d (exact), AvgPool2d and AdaptiveAvgPool2d (averages round half
to even). The output keeps the input's parameters, and the input's memory format (channels_last is the
fast path)."""
from typing import Any, List, Optional, Sequence, Union

import torch

from qtorch._ops import ops
from qtorch.nn.quantized.activation import SameParamsModule

_IntPair = Union[int, Sequence[int]]


def _pair(value: _IntPair) -> List[int]:
    if isinstance(value, int):
        return [value, value]
    values = [int(v) for v in value]
    return values * 2 if len(values) == 1 else values


class MaxPool2d(SameParamsModule):
    """Max pooling on uint8 integers: exact; runs without parameters on integer input and output."""

    kernel_size: List[int]
    stride: List[int]
    padding: List[int]
    dilation: List[int]
    ceil_mode: bool

    def __init__(self, kernel_size: _IntPair, stride: Optional[_IntPair] = None, padding: _IntPair = 0,
                 dilation: _IntPair = 1, return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        if return_indices:
            raise NotImplementedError("quantized MaxPool2d does not support return_indices=True")
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point() and not self.has_input_qparams:
            raise RuntimeError("MaxPool2d got float input but holds no input quantization parameters")
        x = self._integer_input(x)
        return self._finish(ops.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                           self.ceil_mode))

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "MaxPool2d":
        return cls(mod.kernel_size, mod.stride, mod.padding, mod.dilation, False, mod.ceil_mode)


class AvgPool2d(SameParamsModule):
    """Average pooling (ceil_mode, count_include_pad, divisor_override as in torch)."""

    kernel_size: List[int]
    stride: List[int]
    padding: List[int]
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: Optional[int]

    def __init__(self, kernel_size: _IntPair, stride: Optional[_IntPair] = None, padding: _IntPair = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)
        self.padding = _pair(padding)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_input_qparams:
            raise RuntimeError("AvgPool2d holds no input quantization parameters: convert() sets them, "
                               "or call it with a qtorch.QTensor")
        x = self._integer_input(x)
        return self._finish(ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                           self.count_include_pad, self.divisor_override, self.input_scale,
                                           self.input_zero_point, self.scale, self.zero_point))

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}, "
                f"divisor_override={self.divisor_override}")

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "AvgPool2d":
        return cls(mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode, mod.count_include_pad,
                   mod.divisor_override)


class AdaptiveAvgPool2d(SameParamsModule):
    """Adaptive average pooling to any output size (None keeps that input size)."""

    output_h: int  # -1: the input's height
    output_w: int

    def __init__(self, output_size: Union[int, None, Sequence[Optional[int]]]) -> None:
        super().__init__()
        sizes = [output_size, output_size] if output_size is None or isinstance(output_size, int) \
            else list(output_size)
        if len(sizes) == 1:
            sizes = sizes * 2
        if len(sizes) != 2:
            raise ValueError(f"output_size must be an int or a pair, got {output_size}")
        self.output_h = -1 if sizes[0] is None else int(sizes[0])
        self.output_w = -1 if sizes[1] is None else int(sizes[1])
        self.output_size = output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_input_qparams:
            raise RuntimeError("AdaptiveAvgPool2d holds no input quantization parameters: convert() sets them, "
                               "or call it with a qtorch.QTensor")
        x = self._integer_input(x)
        h = x.size(-2) if self.output_h < 0 else self.output_h
        w = x.size(-1) if self.output_w < 0 else self.output_w
        return self._finish(ops.adaptive_avg_pool2d(x, [h, w], self.input_scale, self.input_zero_point, self.scale,
                                                    self.zero_point))

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "AdaptiveAvgPool2d":
        return cls(mod.output_size)
