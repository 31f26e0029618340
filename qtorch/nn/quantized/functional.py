"""Functional forms of the quantized ops, on qtorch.QTensor (mirrors torch.ao.nn.quantized.functional)."""
import math
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch

from qtorch._ops import ops
from qtorch._qtensor import QTensor


def linear(input: Any, weight: Any, bias: Optional[torch.Tensor] = None, scale: Optional[float] = None,
           zero_point: Optional[int] = None) -> Any:
    r"""Quantized ``y = x W^T + b`` on QTensors: ``input`` uint8 (quint8), ``weight`` int8 (qint8, per tensor or
    per output channel), ``bias`` float. Output parameters default to the input's. Packs the weight on each
    call; use :class:`qtorch.nn.quantized.Linear` to pack once.
    """
    from qtorch._qtensor import QTensor
    from qtorch.nn.quantized._weights import weight_parts

    if not isinstance(input, QTensor) or input.int_repr().dtype != torch.uint8:
        raise TypeError(f"input must be a qtorch.QTensor holding uint8 values, got {type(input).__name__}")
    data, scales, zero_points = weight_parts(weight)
    scale = input.q_scale() if scale is None else scale
    zero_point = input.q_zero_point() if zero_point is None else zero_point
    packed, col_sums = ops.linear_prepack(data)
    out = ops.linear(input.int_repr(), packed, col_sums, data.shape[1], bias, input.q_scale(),
                     input.q_zero_point(), scales, zero_points, float(scale), int(zero_point))
    return QTensor(out, float(scale), int(zero_point))


def conv2d(input: Any, weight: Any, bias: Optional[torch.Tensor], stride: Union[int, Tuple[int, int]] = 1,
           padding: Union[int, Tuple[int, int]] = 0, dilation: Union[int, Tuple[int, int]] = 1, groups: int = 1,
           padding_mode: str = "zeros", scale: float = 1.0, zero_point: int = 0, dtype: Any = torch.uint8) -> Any:
    """2-d convolution of a quantized uint8 QTensor with an int8 quantized weight (per tensor or per
    channel along axis 0); returns a uint8 QTensor with the given output scale and zero point, in
    channels_last memory format. Packs the weight on every call: modules pack once."""
    from qtorch._dtypes import storage_dtype
    from qtorch._qtensor import QTensor
    from qtorch.nn.quantized.conv import _pair
    from qtorch.nn.quantized._weights import weight_parts

    if padding_mode != "zeros":
        raise ValueError(f"quantized conv2d supports only padding_mode='zeros', got {padding_mode!r}")
    if storage_dtype(dtype) != torch.uint8:
        raise TypeError(f"dtype must be qtorch.quint8 (torch.uint8), got {dtype}")
    if not isinstance(input, QTensor) or input.dtype != torch.uint8:
        raise TypeError(f"input must be a uint8 qtorch.QTensor, got {type(input).__name__}")
    w, scales, zero_points = weight_parts(weight)
    padding = _pair(padding, "padding")
    if min(padding) < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    if w.dim() != 4:
        raise ValueError(f"weight must be 4-d (out_channels, in_channels / groups, kh, kw), got {w.dim()}-d")
    w = w.contiguous()
    packed, sums = ops.conv2d_prepack(w, zero_points, groups)
    if bias is not None:
        bias = bias.detach().to(torch.float32)
    y = ops.conv2d(input.int_repr(), input.q_scale(), input.q_zero_point(), packed, sums, scales, zero_points, bias,
                   list(w.shape[2:]), list(_pair(stride, "stride")), list(padding), list(_pair(dilation, "dilation")),
                   groups, float(scale), int(zero_point))
    return QTensor(y, float(scale), int(zero_point))


# ---- activations, pooling, resize ----------------------------------------------------
# Each takes a qtorch.QTensor (and returns one, with the classic output parameters)
# or a plain torch.uint8 tensor whose quantization parameters are then given as the
# keyword arguments ``input_scale`` and ``input_zero_point`` (the result is a plain
# uint8 tensor with the same parameters unless the function says otherwise).

_IntPair = Union[int, Sequence[int]]


# ---- QTensor / plain tensor plumbing ---------------------------------------------------

def _unwrap(input, input_scale: float, input_zero_point: int, what: str) -> Tuple[torch.Tensor, float, int, bool]:
    """(uint8 data, scale, zero point, was a QTensor)."""
    if isinstance(input, QTensor):
        if input.qscheme() != torch.per_tensor_affine:
            raise TypeError(f"{what} takes a per-tensor quantized input, got a per-channel QTensor")
        if input.dtype != torch.uint8:
            raise TypeError(f"{what} takes quint8 (torch.uint8) input, got {input.dtype}")
        return input._data, float(input.q_scale()), int(input.q_zero_point()), True
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{what}: input must be a qtorch.QTensor or a torch.uint8 tensor, got {type(input).__name__}")
    if input.dtype != torch.uint8:
        raise TypeError(f"{what}: input must be a qtorch.QTensor or a torch.uint8 tensor, got {input.dtype}")
    return input, float(input_scale), int(input_zero_point), False


def _wrap(data: torch.Tensor, scale: float, zero_point: int, as_qtensor: bool):
    return QTensor(data, scale, zero_point) if as_qtensor else data


def _pair(value: _IntPair, name: str) -> List[int]:
    if isinstance(value, int):
        return [value, value]
    values = [int(v) for v in value]
    if len(values) == 1:
        return values * 2
    if len(values) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value}")
    return values


def _write_inplace(input, result: torch.Tensor):
    """In-place variants write the result into the input's integers and return the input."""
    data = input._data if isinstance(input, QTensor) else input
    data.copy_(result)
    return input


# ---- activations ----------------------------------------------------------------------

def relu(input, inplace: bool = False, *, input_scale: float = 1.0, input_zero_point: int = 0):
    """max(x, 0): exact, parameters unchanged."""
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "relu")
    out = ops.relu(data, s, z, s, z)
    return _write_inplace(input, out) if inplace else _wrap(out, s, z, q)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False, *,
             input_scale: float = 1.0, input_zero_point: int = 0):
    """clamp(x, min_val, max_val): exact, parameters unchanged."""
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "hardtanh")
    out = ops.hardtanh(data, s, z, float(min_val), float(max_val), s, z)
    return _write_inplace(input, out) if inplace else _wrap(out, s, z, q)


def relu6(input, inplace: bool = False, *, input_scale: float = 1.0, input_zero_point: int = 0):
    """clamp(x, 0, 6): exact, parameters unchanged."""
    return hardtanh(input, 0.0, 6.0, inplace, input_scale=input_scale, input_zero_point=input_zero_point)


def hardswish(input, scale: Optional[float] = None, zero_point: Optional[int] = None, *,
              input_scale: float = 1.0, input_zero_point: int = 0):
    """x * relu6(x + 3) / 6, quantized with (scale, zero_point) (default: the input's)."""
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "hardswish")
    out_s, out_z = (s if scale is None else float(scale)), (z if zero_point is None else int(zero_point))
    return _wrap(ops.hardswish(data, s, z, out_s, out_z), out_s, out_z, q)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False, scale: Optional[float] = None,
               zero_point: Optional[int] = None, *, input_scale: float = 1.0, input_zero_point: int = 0):
    """x if x > 0 else negative_slope * x, quantized with (scale, zero_point) (default: the input's)."""
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "leaky_relu")
    out_s, out_z = (s if scale is None else float(scale)), (z if zero_point is None else int(zero_point))
    out = ops.leaky_relu(data, s, z, float(negative_slope), out_s, out_z)
    if inplace:
        if (out_s, out_z) != (s, z):
            raise ValueError("leaky_relu: inplace needs the output parameters to equal the input's")
        return _write_inplace(input, out)
    return _wrap(out, out_s, out_z, q)


# The classic fixed output parameters of bounded activations on quint8: [0, 1) in 256 steps.
_UNIT_SCALE, _UNIT_ZERO_POINT = 1.0 / 256.0, 0


def hardsigmoid(input, inplace: bool = False, *, input_scale: float = 1.0, input_zero_point: int = 0):
    """relu6(x + 3) / 6, with the classic output parameters scale=1/256, zero_point=0."""
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "hardsigmoid")
    out = ops.hardsigmoid(data, s, z, _UNIT_SCALE, _UNIT_ZERO_POINT)
    if inplace:
        raise ValueError("hardsigmoid: inplace is not supported (its output parameters differ from the input's)")
    return _wrap(out, _UNIT_SCALE, _UNIT_ZERO_POINT, q)


def sigmoid(input, *, input_scale: float = 1.0, input_zero_point: int = 0):
    """1 / (1 + exp(-x)), with the classic output parameters scale=1/256, zero_point=0."""
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "sigmoid")
    return _wrap(ops.sigmoid(data, s, z, _UNIT_SCALE, _UNIT_ZERO_POINT), _UNIT_SCALE, _UNIT_ZERO_POINT, q)


# ---- pooling --------------------------------------------------------------------------

def max_pool2d(input, kernel_size: _IntPair, stride: Optional[_IntPair] = None, padding: _IntPair = 0,
               dilation: _IntPair = 1, ceil_mode: bool = False, return_indices: bool = False, *,
               input_scale: float = 1.0, input_zero_point: int = 0):
    """Max pooling on the integers: exact, parameters unchanged."""
    if return_indices:
        raise NotImplementedError("max_pool2d: return_indices=True is not supported for quantized input")
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "max_pool2d")
    stride_list = [] if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride, "stride")
    out = ops.max_pool2d(data, _pair(kernel_size, "kernel_size"), stride_list, _pair(padding, "padding"),
                         _pair(dilation, "dilation"), bool(ceil_mode))
    return _wrap(out, s, z, q)


def avg_pool2d(input, kernel_size: _IntPair, stride: Optional[_IntPair] = None, padding: _IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: Optional[int] = None, *,
               input_scale: float = 1.0, input_zero_point: int = 0):
    """Average pooling; the output keeps the input's parameters (averages round half to even)."""
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "avg_pool2d")
    stride_list = [] if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride, "stride")
    out = ops.avg_pool2d(data, _pair(kernel_size, "kernel_size"), stride_list, _pair(padding, "padding"),
                         bool(ceil_mode), bool(count_include_pad), divisor_override, s, z, s, z)
    return _wrap(out, s, z, q)


def _adaptive_size(output_size, height: int, width: int) -> List[int]:
    sizes = [output_size, output_size] if output_size is None or isinstance(output_size, int) else list(output_size)
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size}")
    return [height if sizes[0] is None else int(sizes[0]), width if sizes[1] is None else int(sizes[1])]


def adaptive_avg_pool2d(input, output_size, *, input_scale: float = 1.0, input_zero_point: int = 0):
    """Adaptive average pooling to any output size; the output keeps the input's parameters."""
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "adaptive_avg_pool2d")
    if data.dim() not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d: input must be 3-d or 4-d, got {data.dim()}-d")
    size = _adaptive_size(output_size, data.shape[-2], data.shape[-1])
    return _wrap(ops.adaptive_avg_pool2d(data, size, s, z, s, z), s, z, q)


# ---- resize ---------------------------------------------------------------------------

def _resize_args(data: torch.Tensor, size, scale_factor, recompute_scale_factor: Optional[bool],
                 what: str) -> Tuple[List[int], Optional[float], Optional[float]]:
    """Output size and the scales handed to the kernel, as torch.nn.functional.interpolate computes them."""
    if data.dim() != 4:
        raise ValueError(f"{what}: quantized input must be 4-d (N, C, H, W), got {data.dim()}-d")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{what}: give exactly one of size and scale_factor")
    if size is not None:
        out = _pair(size, "size")
        if any(v <= 0 for v in out):
            raise ValueError(f"{what}: size must be positive, got {size}")
        return out, None, None
    factors = [float(scale_factor)] * 2 if isinstance(scale_factor, (int, float)) else [float(f) for f in scale_factor]
    if len(factors) != 2:
        raise ValueError(f"{what}: scale_factor must be a number or a pair, got {scale_factor}")
    if any(not math.isfinite(f) or f <= 0 for f in factors):
        raise ValueError(f"{what}: scale_factor must be positive and finite, got {scale_factor}")
    out = [int(math.floor(float(data.shape[2 + i]) * factors[i])) for i in range(2)]
    if any(v <= 0 for v in out):
        raise ValueError(f"{what}: scale_factor {scale_factor} gives an empty output from input size "
                         f"{tuple(data.shape[2:])}")
    if recompute_scale_factor:
        return out, None, None
    return out, factors[0], factors[1]


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None, antialias: bool = False, *,
                input_scale: float = 1.0, input_zero_point: int = 0):
    """Nearest or bilinear resize on the integers; the output keeps the input's parameters."""
    data, s, z, q = _unwrap(input, input_scale, input_zero_point, "interpolate")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported for quantized input")
    out_size, scale_h, scale_w = _resize_args(data, size, scale_factor, recompute_scale_factor, "interpolate")
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError("interpolate: align_corners can only be set with mode='bilinear'")
        out = ops.upsample_nearest2d(data, out_size, scale_h, scale_w)
    elif mode == "bilinear":
        out = ops.upsample_bilinear2d(data, out_size, bool(align_corners), scale_h, scale_w)
    else:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported for quantized input "
                                  f"(supported: 'nearest', 'bilinear')")
    return _wrap(out, s, z, q)


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners: Optional[bool] = None, *,
             input_scale: float = 1.0, input_zero_point: int = 0):
    """Deprecated alias of interpolate (as in torch)."""
    return interpolate(input, size, scale_factor, mode, align_corners, input_scale=input_scale,
                       input_zero_point=input_zero_point)


def upsample_bilinear(input, size=None, scale_factor=None, *, input_scale: float = 1.0, input_zero_point: int = 0):
    """Bilinear resize with align_corners=True (as torch's upsample_bilinear)."""
    return interpolate(input, size, scale_factor, "bilinear", True, input_scale=input_scale,
                       input_zero_point=input_zero_point)


def upsample_nearest(input, size=None, scale_factor=None, *, input_scale: float = 1.0, input_zero_point: int = 0):
    """Nearest resize (as torch's upsample_nearest)."""
    return interpolate(input, size, scale_factor, "nearest", input_scale=input_scale,
                       input_zero_point=input_zero_point)
