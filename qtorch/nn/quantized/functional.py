"""Functional forms of the quantized ops, on qtorch.QTensor (mirrors torch.ao.nn.quantized.functional)."""
from typing import Any, Optional

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
