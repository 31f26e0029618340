"""Quantized weights of Linear, Conv2d and the dynamic RNNs: int8 data, scales and zero
points from a weight observer, or from a quantized weight handed in by the user."""
from typing import Any, Tuple

import torch

from qtorch._dtypes import _TORCH_QUANTIZED
from qtorch._ops import ops

_PER_CHANNEL_QSCHEMES = (torch.per_channel_affine, torch.per_channel_symmetric,
                         torch.per_channel_affine_float_qparams)


def quantize_weight(weight: torch.Tensor, observer: Any) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """int8 weight, scales and zero points from a weight observer that has seen ``weight``."""
    if _TORCH_QUANTIZED.get(observer.dtype, observer.dtype) != torch.int8:
        raise ValueError(f"weight observer must have dtype qtorch.qint8 (torch.int8), got {observer.dtype}")
    scales, zero_points = observer.calculate_qparams()
    scales = torch.as_tensor(scales, dtype=torch.float32).reshape(-1)
    zero_points = torch.as_tensor(zero_points).to(torch.int32).reshape(-1)
    weight = weight.detach().float()
    if observer.qscheme in _PER_CHANNEL_QSCHEMES:
        if getattr(observer, "ch_axis", 0) != 0:
            raise ValueError(f"per-channel weights must be quantized along axis 0 (output channels), got {observer.ch_axis}")
        q = ops.quantize_per_channel(weight, scales, zero_points, 0, torch.int8)
    else:
        q = ops.quantize_per_tensor(weight, float(scales[0]), int(zero_points[0]), torch.int8)
    return q, scales, zero_points


def weight_parts(weight: Any) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """int8 data, scales and zero points of a quantized weight (a qtorch QTensor, or torch's own)."""
    if isinstance(weight, tuple):
        return weight
    data = weight.int_repr()
    if data.dtype != torch.int8:
        raise TypeError(f"weight must hold int8 values (qint8), got {data.dtype}")
    if weight.qscheme() in _PER_CHANNEL_QSCHEMES:
        if weight.q_per_channel_axis() != 0:
            raise ValueError(f"per-channel weights must use axis 0 (output channels), got {weight.q_per_channel_axis()}")
        scales = weight.q_per_channel_scales().to(torch.float32)
        zero_points = weight.q_per_channel_zero_points().to(torch.int32)
    else:
        scales = torch.tensor([float(weight.q_scale())], dtype=torch.float32)
        zero_points = torch.tensor([int(weight.q_zero_point())], dtype=torch.int32)
    return data, scales, zero_points
