"""Torch functions on qtorch.QTensor that run qtorch's elementwise and pooling kernels.

Registered with ``qtorch._qtensor.implements`` (imported by ``qtorch/__init__``), so
``F.max_pool2d(q, 2)``, ``torch.cat([qa, qb], 1)``, ``F.interpolate(q, ...)`` and
friends work on QTensors with the classic semantics: pooling, resize, relu and the
clamping activations keep the input's parameters, ``torch.cat`` uses the first
input's, sigmoid and hardsigmoid use scale 1/256 and zero point 0.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from qtorch._ops import ops
from qtorch._qtensor import QTensor, implements
from qtorch.nn.quantized import functional as qF


def _registered(torch_function, functional):
    """Registers a functional as the handler of a torch function (and returns it)."""
    implements(torch_function)(functional)
    return functional


for _torch_fn, _functional in (
    (F.relu, qF.relu),
    (torch.relu, qF.relu),
    (F.relu6, qF.relu6),
    (F.hardtanh, qF.hardtanh),
    (F.hardsigmoid, qF.hardsigmoid),
    (F.leaky_relu, qF.leaky_relu),
    (torch.sigmoid, qF.sigmoid),
    (F.max_pool2d, qF.max_pool2d),
    (F.avg_pool2d, qF.avg_pool2d),
    (F.adaptive_avg_pool2d, qF.adaptive_avg_pool2d),
    (F.interpolate, qF.interpolate),
    (F.upsample, qF.upsample),
    (F.upsample_bilinear, qF.upsample_bilinear),
    (F.upsample_nearest, qF.upsample_nearest),
):
    _registered(_torch_fn, _functional)


@implements(F.hardswish)
def _hardswish(input, inplace: bool = False):
    """torch's hardswish on a quantized tensor keeps the input's parameters."""
    out = qF.hardswish(input)
    return qF._write_inplace(input, out._data) if inplace else out


@implements(torch.max_pool2d)
def _max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return qF.max_pool2d(input, kernel_size, stride if stride else None, padding, dilation, ceil_mode)


@implements(torch.cat, torch.concat, torch.concatenate)
def _cat(tensors: Sequence[QTensor], dim: int = 0, *, axis: Optional[int] = None, out=None) -> QTensor:
    """Classic quantized cat: the output takes the first input's parameters; others are requantized."""
    if out is not None:
        raise TypeError("torch.cat on QTensors does not support out=")
    dim = axis if axis is not None else dim
    tensors = list(tensors)
    if not tensors:
        raise ValueError("torch.cat needs at least one QTensor")
    for i, t in enumerate(tensors):
        if not isinstance(t, QTensor):
            raise TypeError(f"torch.cat: tensors[{i}] is a {type(t).__name__}, but tensors[0] is a QTensor: "
                            "quantize it or dequantize the others")
        if t.qscheme() != torch.per_tensor_affine or t.dtype != torch.uint8:
            raise TypeError(f"torch.cat: tensors[{i}] must be a per-tensor quint8 (torch.uint8) QTensor")
    scale, zero_point = float(tensors[0].q_scale()), int(tensors[0].q_zero_point())
    data = ops.cat([t._data for t in tensors], [float(t.q_scale()) for t in tensors],
                   [int(t.q_zero_point()) for t in tensors], int(dim), scale, zero_point)
    return QTensor(data, scale, zero_point)


def spatial_mean(q: QTensor, dim, keepdim: bool) -> Optional[QTensor]:
    """q.mean over the two spatial dims of a 4-d uint8 QTensor through the pooling kernel, else None."""
    if q.dim() != 4 or q.dtype != torch.uint8 or q.qscheme() != torch.per_tensor_affine or dim is None:
        return None
    dims: List[int] = [dim] if isinstance(dim, int) else list(dim)
    if sorted(d % 4 for d in dims) != [2, 3]:
        return None
    scale, zero_point = float(q.q_scale()), int(q.q_zero_point())
    pooled = ops.adaptive_avg_pool2d(q._data, [1, 1], scale, zero_point, scale, zero_point)
    return QTensor(pooled if keepdim else pooled.reshape(pooled.shape[0], pooled.shape[1]), scale, zero_point)
