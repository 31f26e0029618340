"""Functional forms of the quantized ops, on qtorch.QTensor (mirrors torch.ao.nn.quantized.functional)."""
from typing import Any, Optional, Tuple, Union

import torch

from qtorch._ops import ops


def linear(input: Any, weight: Any, bias: Optional[torch.Tensor] = None, scale: Optional[float] = None,
           zero_point: Optional[int] = None) -> Any:
    r"""Quantized ``y = x W^T + b`` on QTensors: ``input`` uint8 (quint8), ``weight`` int8 (qint8, per tensor or
    per output channel), ``bias`` float. Output parameters default to the input's. Packs the weight on each
    call; use :class:`qtorch.nn.quantized.Linear` to pack once.
    """
    from qtorch._qtensor import QTensor
    from qtorch.nn.quantized.linear import _weight_parts

    if not isinstance(input, QTensor) or input.int_repr().dtype != torch.uint8:
        raise TypeError(f"input must be a qtorch.QTensor holding uint8 values, got {type(input).__name__}")
    data, scales, zero_points = _weight_parts(weight)
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
    from qtorch.nn.quantized.linear import _weight_parts

    if padding_mode != "zeros":
        raise ValueError(f"quantized conv2d supports only padding_mode='zeros', got {padding_mode!r}")
    if storage_dtype(dtype) != torch.uint8:
        raise TypeError(f"dtype must be qtorch.quint8 (torch.uint8), got {dtype}")
    if not isinstance(input, QTensor) or input.dtype != torch.uint8:
        raise TypeError(f"input must be a uint8 qtorch.QTensor, got {type(input).__name__}")
    w, scales, zero_points = _weight_parts(weight)
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
