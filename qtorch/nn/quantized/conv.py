"""Quantized 2-d convolution: uint8 activations (either memory format in, channels_last out),
int8 weights per tensor or per output channel, packed once into module buffers."""
from typing import Any, List, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from qtorch._ops import ops
from qtorch.nn.quantized._module import QuantizedModule
from qtorch.nn.quantized._weights import quantize_weight, weight_parts

__all__ = ["Conv2d"]

def _pair(value: Union[int, Tuple[int, ...], List[int]], arg: str) -> Tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) != 2:
        raise ValueError(f"{arg} must be an int or a pair of ints, got {value}")
    return (values[0], values[1])


def _padding_pair(padding: Union[str, int, Tuple[int, ...]], kernel_size: Tuple[int, int],
                  stride: Tuple[int, int], dilation: Tuple[int, int]) -> Tuple[int, int]:
    """Symmetric padding; 'valid' is none, 'same' is what keeps the size at stride 1."""
    if not isinstance(padding, str):
        pad = _pair(padding, "padding")
        if min(pad) < 0:
            raise ValueError(f"padding must be non-negative, got {padding}")
        return pad
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
        total = [d * (k - 1) for d, k in zip(dilation, kernel_size)]
        if any(t % 2 for t in total):
            raise ValueError("padding='same' with an even dilated kernel needs asymmetric padding, which "
                             f"quantized Conv2d does not support (kernel_size {kernel_size}, dilation {dilation})")
        return (total[0] // 2, total[1] // 2)
    raise ValueError(f"padding must be an int, a pair of ints, 'valid' or 'same', got {padding!r}")


def _unwrap_float_conv(mod: nn.Module) -> Tuple[nn.Conv2d, torch.Tensor, Optional[torch.Tensor], bool, Any]:
    """(conv, weight, bias, relu, weight observer) of a float conv, a fused float module
    (Conv+ReLU, Conv+BN, Conv+BN+ReLU, torch.ao's or qtorch's) or a QAT conv, with batch norm folded."""
    relu = False
    # A conv first: torch's QAT fused modules are both nn.Conv2d and nn.Sequential.
    if isinstance(mod, nn.Conv2d):
        conv = mod
        weight, bias = mod.weight, mod.bias
        bn = getattr(mod, "bn", None)
        if isinstance(bn, nn.BatchNorm2d):  # QAT conv + bn
            weight, bias = fuse_conv_bn_weights(weight, bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                                bn.bias)
        relu = "ReLU" in type(mod).__name__  # QAT ConvReLU2d / ConvBnReLU2d
    elif isinstance(mod, nn.Sequential):
        # prepare() may have added the output observer as a child: not a part of the computation.
        parts = [m for name, m in mod.named_children() if name != "activation_post_process"]
        conv = parts[0]
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"a fused conv module must start with nn.Conv2d, got {type(conv).__name__}")
        weight, bias = conv.weight, conv.bias
        for part in parts[1:]:
            if isinstance(part, nn.BatchNorm2d):
                weight, bias = fuse_conv_bn_weights(weight, bias, part.running_mean, part.running_var, part.eps,
                                                    part.weight, part.bias)
            elif isinstance(part, nn.ReLU):
                relu = True
            else:
                raise TypeError(f"cannot fold {type(part).__name__} into a quantized Conv2d")
    else:
        raise TypeError(f"from_float expects nn.Conv2d or a fused conv module, got {type(mod).__name__}")
    observer = getattr(mod, "weight_fake_quant", None)
    if observer is None:
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None:
            raise ValueError(f"{type(mod).__name__} has no qconfig: run qtorch.quantization.prepare first")
        observer = qconfig.weight()
    bias = bias.detach().float() if bias is not None else None
    return conv, weight, bias, relu, observer


class Conv2d(QuantizedModule):
    """Applies a 2-d convolution to a uint8 input (the classic ``torch.ao.nn.quantized.Conv2d``).

    The output is uint8 in channels_last memory format (logically NCHW). Weights are int8,
    per tensor or per output channel; bias is float32 and requantization, bias and (in
    ConvReLU2d) ReLU happen in the kernel's epilogue."""

    _FLOAT_MODULE = nn.Conv2d
    _RELU = False

    in_channels: int
    out_channels: int
    kernel_size: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    groups: int
    padding_mode: str
    weight_per_channel: bool
    has_bias: bool

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, Tuple[int, int]],
                 stride: Union[int, Tuple[int, int]] = 1, padding: Union[str, int, Tuple[int, int]] = 0,
                 dilation: Union[int, Tuple[int, int]] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f"quantized Conv2d supports only padding_mode='zeros', got {padding_mode!r}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible "
                             f"by groups ({groups})")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        self.padding = _padding_pair(padding, self.kernel_size, self.stride, self.dilation)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(f"kernel_size, stride and dilation must be positive, got {self.kernel_size}, "
                             f"{self.stride}, {self.dilation}")
        weight = torch.zeros(out_channels, in_channels // groups, *self.kernel_size, dtype=torch.int8)
        self._set_weight(weight, torch.ones(1), torch.zeros(1, dtype=torch.int32),
                         torch.zeros(out_channels) if bias else None)

    def _set_weight(self, weight: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor,
                    bias: Optional[torch.Tensor]) -> None:
        expected = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        if weight.dtype != torch.int8:
            raise TypeError(f"weight must be torch.int8, got {weight.dtype}")
        if tuple(weight.shape) != expected:
            raise ValueError(f"weight must have shape {expected}, got {tuple(weight.shape)}")
        scales = torch.as_tensor(scales, dtype=torch.float32).reshape(-1)
        zero_points = torch.as_tensor(zero_points).to(torch.int32).reshape(-1)
        if scales.numel() not in (1, self.out_channels) or zero_points.numel() != scales.numel():
            raise ValueError(f"weight scales and zero points must hold 1 or {self.out_channels} values, got "
                             f"{scales.numel()} and {zero_points.numel()}")
        self.weight_per_channel = scales.numel() > 1
        # The packed weight is the only copy: weight() and friends unpack it on demand.
        packed, sums = ops.conv2d_prepack(weight.contiguous(), zero_points, self.groups)
        # Always one value per output channel for the kernels; weight_per_channel records the scheme.
        self.register_buffer("_weight_scales", scales.expand(self.out_channels).contiguous())
        self.register_buffer("_weight_zero_points", zero_points.expand(self.out_channels).contiguous())
        self.register_buffer("_packed_weight", packed)
        self.register_buffer("_weight_sums", sums)
        self.has_bias = bias is not None
        if bias is not None:
            bias = bias.detach().to(torch.float32).reshape(-1)
            if bias.numel() != self.out_channels:
                raise ValueError(f"bias must have {self.out_channels} values, got {bias.numel()}")
        # A zero bias adds exactly nothing in the epilogue, so the kernel always gets one.
        self.register_buffer("_bias", bias.contiguous() if bias is not None else torch.zeros(self.out_channels))

    # --- the classic accessors -------------------------------------------------------------------
    def set_weight_bias(self, w: Any, b: Optional[torch.Tensor]) -> None:
        """Sets the weight from a quantized int8 tensor (qtorch.QTensor or torch's; per tensor or per
        channel along axis 0) or a tuple (int8 data, scales, zero points), and the float bias."""
        data, scales, zero_points = weight_parts(w)
        self._set_weight(data, scales, zero_points, b)

    @torch.jit.unused
    def _weight_int8(self) -> torch.Tensor:
        """The int8 weight (out_channels, in_channels / groups, kernel_h, kernel_w), unpacked."""
        shape = [self.out_channels, self.in_channels // self.groups, self.kernel_size[0], self.kernel_size[1]]
        return ops.conv2d_unpack(self._packed_weight, shape, self.groups)

    @torch.jit.unused
    def weight(self) -> Any:
        from qtorch._qtensor import QTensor

        data = self._weight_int8()
        if self.weight_per_channel:
            return QTensor(data, self._weight_scales.clone(), self._weight_zero_points.clone(), axis=0)
        return QTensor(data, float(self._weight_scales[0]), int(self._weight_zero_points[0]))

    @torch.jit.unused
    def bias(self) -> Optional[torch.Tensor]:
        return self._bias.clone() if self.has_bias else None

    @torch.jit.unused
    def _weight_bias(self) -> Tuple[Any, Optional[torch.Tensor]]:
        return self.weight(), self.bias()

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"scale={self.scale}, zero_point={self.zero_point}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.has_bias:
            s += ", bias=False"
        return s

    # --- state_dict: the buffers plus the module constants (QuantizedModule) ------------------------------
    _CONSTANTS = {**QuantizedModule._CONSTANTS, "weight_per_channel": bool, "has_bias": bool}
    _ASSIGNED_BUFFERS = ("_weight_scales", "_weight_zero_points", "_packed_weight", "_weight_sums", "_bias")

    def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: Any, strict: bool,
                              missing_keys: Any, unexpected_keys: Any, error_msgs: Any) -> None:
        # Earlier versions also saved the unpacked weight; the packed one holds the same values.
        state_dict.pop(prefix + "_weight_int8", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    # --- compute -------------------------------------------------------------------------------------
    def _conv(self, x: torch.Tensor, relu: bool) -> torch.Tensor:
        x = self._integer_input(x)
        if x.dim() != 4:
            raise ValueError("quantized Conv2d takes a 4-d input (N, C, H, W), got a {}-d tensor".format(x.dim()))
        if x.size(1) != self.in_channels:
            raise ValueError("quantized Conv2d expects {} input channels, got an input of shape {}".format(
                self.in_channels, list(x.shape)))
        if not self.has_input_qparams:
            raise RuntimeError("quantized Conv2d has no input quantization parameters: convert() sets them, "
                               "or call set_input_qparams(scale, zero_point), or pass a qtorch.QTensor")
        if torch.jit.is_scripting():
            packed, sums, scales, zero_points, bias = (self._packed_weight, self._weight_sums, self._weight_scales,
                                                       self._weight_zero_points, self._bias)
        else:
            # Eagerly each buffer read goes through nn.Module.__getattr__ (~0.6 us apiece, a
            # quarter of the module's own cost on small layers); one dict read is much cheaper.
            buffers = self._buffers
            packed, sums, scales, zero_points, bias = (buffers["_packed_weight"], buffers["_weight_sums"],
                                                       buffers["_weight_scales"], buffers["_weight_zero_points"],
                                                       buffers["_bias"])
        args = (x, self.input_scale, self.input_zero_point, packed, sums, scales, zero_points, bias,
                list(self.kernel_size), list(self.stride), list(self.padding), list(self.dilation), self.groups,
                self.scale, self.zero_point)
        if relu:
            y = ops.conv2d_relu(*args)
        else:
            y = ops.conv2d(*args)
        return self._finish(y)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._conv(input, False)

    # --- conversion ----------------------------------------------------------------------------------
    @classmethod
    def from_float(cls, mod: nn.Module, use_precomputed_fake_quant: bool = False) -> "Conv2d":
        """From nn.Conv2d, a QAT conv, or a fused module (Conv+ReLU, Conv+BN(+ReLU); batch norm is
        folded) that prepare() and calibration equipped with observers."""
        conv, weight, bias, relu, observer = _unwrap_float_conv(mod)
        if relu and not cls._RELU:
            raise TypeError(f"{type(mod).__name__} ends in ReLU: convert it with "
                            "qtorch.nn.intrinsic.quantized.ConvReLU2d.from_float")
        if conv.padding_mode != "zeros":
            raise ValueError(f"quantized Conv2d supports only padding_mode='zeros', got {conv.padding_mode!r}")
        activation = getattr(mod, "activation_post_process", None)
        if activation is None:
            raise ValueError(f"{type(mod).__name__} has no activation_post_process: run "
                             "qtorch.quantization.prepare and calibrate before converting")
        if not use_precomputed_fake_quant:
            observer(weight.detach().float())
        qweight, scales, zero_points = quantize_weight(weight, observer)
        qmod = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                   conv.groups, bias is not None, "zeros")
        qmod._set_weight(qweight, scales, zero_points, bias)
        scale, zero_point = activation.calculate_qparams()
        qmod.scale = float(torch.as_tensor(scale).reshape(-1)[0])
        qmod.zero_point = int(torch.as_tensor(zero_point).reshape(-1)[0])
        return qmod
