"""qtorch.QTensor: the user-level quantized tensor of the classic API.

Integer data (a plain torch.uint8/int8/int32 tensor) plus its scale, zero point
and, per channel, the channel axis. Converted models never create one; it is for
users quantizing tensors by hand and for calling quantized modules and functionals
eagerly.

Torch functions reach a QTensor through ``__torch_function__``; those qtorch can
run on quantized values are registered with ``@implements(func)`` (here for
view-like and reduction ops, in ``qtorch.nn.quantized`` for the kernels). Any
other function is a TypeError that says to dequantize first.
"""
import functools
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from qtorch._dtypes import dtype_range, quint8, storage_dtype
from qtorch._ops import ops

_HANDLERS: Dict[Callable, Callable] = {}


def implements(*torch_functions: Callable) -> Callable:
    """Registers the decorated function as the QTensor handler of the given torch functions."""

    def register(handler: Callable) -> Callable:
        for func in torch_functions:
            _HANDLERS[func] = handler
        return handler

    return register


def _as_float(value: Union[float, torch.Tensor], arg: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{arg} must be a single value, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    return float(value)


def _as_int(value: Union[int, torch.Tensor], arg: str) -> int:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_floating_point():
            raise ValueError(f"{arg} must be a single integer, got {value}")
        value = value.item()
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{arg} must be an integer, got {value}")
    return int(value)


class QTensor:
    """Quantized tensor: ``real = (int_repr - zero_point) * scale``, per tensor or per channel."""

    __slots__ = ("_data", "_scale", "_zero_point", "_axis")
    __hash__ = object.__hash__

    def __init__(self, data: torch.Tensor, scale: Union[float, torch.Tensor],
                 zero_point: Union[int, torch.Tensor], axis: Optional[int] = None) -> None:
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"data must be a torch.Tensor, got {type(data).__name__}")
        storage_dtype(data.dtype, "data.dtype")
        self._data = data
        if axis is None:
            self._scale = _as_float(scale, "scale")
            self._zero_point = _as_int(zero_point, "zero_point")
            self._axis = None
        else:
            if data.dim() == 0 or not -data.dim() <= axis < data.dim():
                raise IndexError(f"axis must lie in [{-data.dim()}, {data.dim() - 1}], got {axis}")
            self._axis = axis % data.dim()
            self._scale = torch.as_tensor(scale, dtype=torch.float32).reshape(-1)
            self._zero_point = torch.as_tensor(zero_point, dtype=torch.int32).reshape(-1)
            channels = data.shape[self._axis]
            if self._scale.numel() != channels or self._zero_point.numel() != channels:
                raise ValueError(f"scales and zero_points must have {channels} elements (the size of axis "
                                 f"{self._axis}), got {self._scale.numel()} and {self._zero_point.numel()}")

    # --- torch integration -------------------------------------------------------------
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        handler = _HANDLERS.get(func)
        if handler is None:
            name = getattr(func, "__name__", None) or str(func)
            raise TypeError(f"qtorch.QTensor does not support torch.{name}: call .dequantize() to compute in float, "
                            f"or use a qtorch quantized module or functional")
        return handler(*args, **(kwargs or {}))

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"qtorch.QTensor has no attribute {name!r}: call .dequantize() to compute in float, "
                             f"or .int_repr() for the integer data")

    # --- the classic quantized-tensor API -------------------------------------------
    def int_repr(self) -> torch.Tensor:
        return self._data.clone()

    def dequantize(self) -> torch.Tensor:
        if self._axis is None:
            return ops.dequantize_per_tensor(self._data, self._scale, self._zero_point)
        return ops.dequantize_per_channel(self._data, self._scale, self._zero_point, self._axis)

    def qscheme(self) -> torch.qscheme:
        return torch.per_tensor_affine if self._axis is None else torch.per_channel_affine

    def _require_per_tensor(self, what: str) -> None:
        if self._axis is not None:
            raise RuntimeError(f"{what} is defined for per-tensor quantized tensors; this one is per channel "
                               f"(axis {self._axis}): use q_per_channel_scales()/q_per_channel_zero_points()")

    def _require_per_channel(self, what: str) -> None:
        if self._axis is None:
            raise RuntimeError(f"{what} is defined for per-channel quantized tensors; this one is per tensor: "
                               f"use q_scale()/q_zero_point()")

    def q_scale(self) -> float:
        self._require_per_tensor("q_scale()")
        return self._scale

    def q_zero_point(self) -> int:
        self._require_per_tensor("q_zero_point()")
        return self._zero_point

    def q_per_channel_scales(self) -> torch.Tensor:
        self._require_per_channel("q_per_channel_scales()")
        return self._scale.to(torch.float64)

    def q_per_channel_zero_points(self) -> torch.Tensor:
        self._require_per_channel("q_per_channel_zero_points()")
        return self._zero_point.to(torch.int64)

    def q_per_channel_axis(self) -> int:
        self._require_per_channel("q_per_channel_axis()")
        return self._axis

    # --- tensor facts ----------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self._data.dtype

    @property
    def shape(self) -> torch.Size:
        return self._data.shape

    @property
    def device(self) -> torch.device:
        return self._data.device

    @property
    def ndim(self) -> int:
        return self._data.dim()

    @property
    def is_quantized(self) -> bool:
        return True

    @property
    def requires_grad(self) -> bool:
        return False

    def size(self, dim: Optional[int] = None):
        return self._data.size() if dim is None else self._data.size(dim)

    def dim(self) -> int:
        return self._data.dim()

    def numel(self) -> int:
        return self._data.numel()

    def element_size(self) -> int:
        return self._data.element_size()

    def stride(self, dim: Optional[int] = None):
        return self._data.stride() if dim is None else self._data.stride(dim)

    def is_contiguous(self, memory_format: torch.memory_format = torch.contiguous_format) -> bool:
        return self._data.is_contiguous(memory_format=memory_format)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        if self._axis is None:
            params = f"scale={self._scale}, zero_point={self._zero_point}"
        else:
            params = f"axis={self._axis}, scales={self._scale.tolist()}, zero_points={self._zero_point.tolist()}"
        return f"QTensor({self.dequantize()}, dtype={self.dtype}, {params})"

    # --- derived tensors sharing the parameters -------------------------------------
    def _with_data(self, data: torch.Tensor, axis: Optional[int] = None) -> "QTensor":
        """A QTensor over new data with the same parameters (axis moved to `axis` when per channel)."""
        out = QTensor.__new__(QTensor)
        out._data, out._scale, out._zero_point = data, self._scale, self._zero_point
        out._axis = self._axis if axis is None else axis
        return out

    def _reshaping(self, what: str, data: torch.Tensor) -> "QTensor":
        if self._axis is not None:
            raise RuntimeError(f"{what} of a per-channel quantized tensor is not supported (the channel axis "
                               f"would be lost); permute/transpose/index it, or dequantize first")
        return self._with_data(data)

    def view(self, *shape) -> "QTensor":
        return self._reshaping("view", self._data.view(*shape))

    def reshape(self, *shape) -> "QTensor":
        return self._reshaping("reshape", self._data.reshape(*shape))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "QTensor":
        return self._reshaping("flatten", self._data.flatten(start_dim, end_dim))

    def view_as(self, other) -> "QTensor":
        return self.view(other.shape)

    def reshape_as(self, other) -> "QTensor":
        return self.reshape(other.shape)

    def permute(self, *dims) -> "QTensor":
        order = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else list(dims)
        data = self._data.permute(*order)
        if self._axis is None:
            return self._with_data(data)
        return self._with_data(data, [d % self.ndim for d in order].index(self._axis))

    def transpose(self, dim0: int, dim1: int) -> "QTensor":
        data = self._data.transpose(dim0, dim1)
        if self._axis is None:
            return self._with_data(data)
        d0, d1 = dim0 % self.ndim, dim1 % self.ndim
        axis = d1 if self._axis == d0 else d0 if self._axis == d1 else self._axis
        return self._with_data(data, axis)

    def t(self) -> "QTensor":
        return self.transpose(0, 1) if self.ndim == 2 else self._with_data(self._data.t())

    @property
    def T(self) -> "QTensor":
        return self.permute(*reversed(range(self.ndim)))

    def squeeze(self, dim: Optional[int] = None) -> "QTensor":
        return self._reshaping("squeeze", self._data.squeeze() if dim is None else self._data.squeeze(dim))

    def unsqueeze(self, dim: int) -> "QTensor":
        data = self._data.unsqueeze(dim)
        if self._axis is None:
            return self._with_data(data)
        return self._with_data(data, self._axis + (1 if dim % data.dim() <= self._axis else 0))

    def contiguous(self, memory_format: torch.memory_format = torch.contiguous_format) -> "QTensor":
        return self._with_data(self._data.contiguous(memory_format=memory_format))

    def to(self, *args, **kwargs) -> "QTensor":
        memory_format = kwargs.pop("memory_format", None)
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, torch.dtype) and a != self.dtype:
                raise TypeError(f"QTensor.to cannot change the dtype to {a}: use dequantize() or "
                                f"qtorch.quantize_per_tensor")
        data = self._data if memory_format is None else self._data.contiguous(memory_format=memory_format)
        return self._with_data(data.to(*args, **kwargs))

    def cpu(self) -> "QTensor":
        return self

    def detach(self) -> "QTensor":
        return self._with_data(self._data.detach())

    def __getitem__(self, index) -> "QTensor":
        if self._axis is None:
            return self._with_data(self._data[index])
        return _index_per_channel(self, index)

    def chunk(self, chunks: int, dim: int = 0) -> List["QTensor"]:
        return [self._sliced(part, dim) for part in self._data.chunk(chunks, dim)]

    def split(self, split_size, dim: int = 0) -> List["QTensor"]:
        return [self._sliced(part, dim) for part in self._data.split(split_size, dim)]

    def narrow(self, dim: int, start: int, length: int) -> "QTensor":
        index = [slice(None)] * self.ndim
        index[dim] = slice(start, start + length)
        return self[tuple(index)]

    def _sliced(self, part: torch.Tensor, dim: int) -> "QTensor":
        """A slice along dim of this tensor; per channel, the parameters are sliced with it."""
        if self._axis is None or dim % self.ndim != self._axis:
            return self._with_data(part)
        start = (part.data_ptr() - self._data.data_ptr()) // (part.element_size() * self._data.stride(dim))
        return QTensor(part, self._scale[start:start + part.shape[dim]],
                       self._zero_point[start:start + part.shape[dim]], self._axis)

    def clone(self, memory_format: torch.memory_format = torch.preserve_format) -> "QTensor":
        out = self._with_data(self._data.clone(memory_format=memory_format))
        if self._axis is not None:
            out._scale, out._zero_point = self._scale.clone(), self._zero_point.clone()
        return out

    # --- values ------------------------------------------------------------------------
    def _compare(self, other, op: Callable) -> torch.Tensor:
        rhs = other.dequantize() if isinstance(other, QTensor) else other
        return op(self.dequantize(), rhs)

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, torch.eq)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, torch.ne)

    def __lt__(self, other):
        return self._compare(other, torch.lt)

    def __le__(self, other):
        return self._compare(other, torch.le)

    def __gt__(self, other):
        return self._compare(other, torch.gt)

    def __ge__(self, other):
        return self._compare(other, torch.ge)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def equal(self, other: "QTensor") -> bool:
        """Same scheme, parameters and integers (torch.equal on quantized tensors)."""
        if not isinstance(other, QTensor) or self.qscheme() != other.qscheme() or self.dtype != other.dtype:
            return False
        if self._axis is None:
            same_params = self._scale == other._scale and self._zero_point == other._zero_point
        else:
            same_params = (self._axis == other._axis and torch.equal(self._scale, other._scale)
                           and torch.equal(self._zero_point, other._zero_point))
        return bool(same_params) and torch.equal(self._data, other._data)

    def copy_(self, src: Union["QTensor", torch.Tensor]) -> "QTensor":
        """Writes src's values into this tensor's integers, quantized with this tensor's parameters."""
        if isinstance(src, QTensor) and src.qscheme() == self.qscheme() and src.equal_params(self):
            self._data.copy_(src._data)
            return self
        values = src.dequantize() if isinstance(src, QTensor) else src
        if not isinstance(values, torch.Tensor) or not values.is_floating_point():
            raise TypeError("copy_ source must be a QTensor or a floating-point tensor")
        self._data.copy_(self._quantize_like(values.to(torch.float32).expand_as(self._data)))
        return self

    def equal_params(self, other: "QTensor") -> bool:
        if self._axis is None:
            return other._axis is None and self._scale == other._scale and self._zero_point == other._zero_point
        return (self._axis == other._axis and torch.equal(self._scale, other._scale)
                and torch.equal(self._zero_point, other._zero_point))

    def _quantize_like(self, values: torch.Tensor) -> torch.Tensor:
        """Float values quantized with this tensor's parameters and dtype."""
        if self._axis is None:
            return ops.quantize_per_tensor(values.contiguous(), self._scale, self._zero_point, self.dtype)
        return ops.quantize_per_channel(values.contiguous(), self._scale, self._zero_point, self._axis, self.dtype)

    def relu(self) -> "QTensor":
        return self.clone().relu_()

    def relu_(self) -> "QTensor":
        """In place: real values below zero become zero, i.e. integers below the zero point become it."""
        if self._axis is None:
            self._data.clamp_(min=self._zero_point)
        else:
            shape = [1] * self.ndim
            shape[self._axis] = -1
            self._data.copy_(torch.maximum(self._data, self._zero_point.to(self.dtype).view(shape)))
        return self

    def resize_(self, *sizes) -> "QTensor":
        self._require_per_tensor("resize_")
        self._data.resize_(*sizes)
        return self

    def _monotone(self, what: str) -> None:
        # Ordering integers orders real values only when one scale covers them all.
        self._require_per_tensor(what)

    def max(self, dim: Optional[int] = None, keepdim: bool = False):
        self._monotone("max")
        if dim is None:
            return self._with_data(self._data.max())
        values, indices = self._data.max(dim, keepdim)
        return torch.return_types.max((self._with_data(values), indices))

    def min(self, dim: Optional[int] = None, keepdim: bool = False):
        self._monotone("min")
        if dim is None:
            return self._with_data(self._data.min())
        values, indices = self._data.min(dim, keepdim)
        return torch.return_types.min((self._with_data(values), indices))

    def sort(self, dim: int = -1, descending: bool = False):
        self._monotone("sort")
        values, indices = self._data.sort(dim=dim, descending=descending)
        return torch.return_types.sort((self._with_data(values), indices))

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        self._monotone("topk")
        values, indices = self._data.topk(k, dim=dim, largest=largest, sorted=sorted)
        return torch.return_types.topk((self._with_data(values), indices))

    def mean(self, dim=None, keepdim: bool = False) -> "QTensor":
        """Mean of the real values, quantized with this tensor's parameters (the classic semantics)."""
        self._require_per_tensor("mean")
        from qtorch.nn.quantized._qtensor_ops import spatial_mean  # NCHW spatial means use the pooling kernel

        pooled = spatial_mean(self, dim, keepdim)
        if pooled is not None:
            return pooled
        values = self.dequantize()
        result = values.mean() if dim is None else values.mean(dim, keepdim=keepdim)
        return self._with_data(self._quantize_like(result))


def _index_per_channel(q: QTensor, index) -> QTensor:
    """Indexing a per-channel tensor: parameters follow the channel axis; an integer index on it is per tensor."""
    if not isinstance(index, tuple):
        index = (index,)
    if any(i is Ellipsis or i is None or isinstance(i, (torch.Tensor, list)) for i in index):
        raise RuntimeError("per-channel QTensor indexing supports integers and slices only")
    axis, scale, zero_point = q._axis, q._scale, q._zero_point
    new_axis: Optional[int] = axis
    removed_before = sum(1 for d, i in enumerate(index) if d < axis and isinstance(i, int))
    if axis < len(index):
        i = index[axis]
        if isinstance(i, int):
            return QTensor(q._data[index], float(scale[i]), int(zero_point[i]))
        scale, zero_point = scale[i], zero_point[i]
    new_axis = axis - removed_before
    return QTensor(q._data[index], scale, zero_point, new_axis)


def _float32_input(input: Any) -> torch.Tensor:
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got {input.dtype}")
    return input.to(torch.float32)


def quantize_per_tensor(input: torch.Tensor, scale: Union[float, torch.Tensor], zero_point: Union[int, torch.Tensor],
                        dtype: torch.dtype) -> QTensor:
    """Quantizes float values: ``q = clamp(round_half_even(x / scale) + zero_point)``; NaN maps to the zero point."""
    plain = storage_dtype(dtype)
    scale_f, zp = _as_float(scale, "scale"), _as_int(zero_point, "zero_point")
    return QTensor(ops.quantize_per_tensor(_float32_input(input), scale_f, zp, plain), scale_f, zp)


def quantize_per_channel(input: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor, axis: int,
                         dtype: torch.dtype) -> QTensor:
    """Quantizes float values with one scale and zero point per index of ``axis``."""
    plain = storage_dtype(dtype)
    scales, zero_points = torch.as_tensor(scales), torch.as_tensor(zero_points)
    data = ops.quantize_per_channel(_float32_input(input), scales, zero_points, axis, plain)
    return QTensor(data, scales, zero_points, axis)


def quantize_per_row_dynamic(input: torch.Tensor, dtype: torch.dtype = quint8,
                             reduce_range: bool = False) -> QTensor:
    """Quantizes each row (each index of dim 0) with parameters chosen from that row's own range.

    A row's parameters are those of classic dynamic quantization (``torch.quantize_per_tensor_dynamic``
    on that row alone): its range widened to hold 0, ``scale = (max - min) / (qmax - qmin)`` and the
    zero point that maps ``min`` (or ``max``) onto ``qmin`` (``qmax``), with ``[qmin, qmax]`` the
    dtype's range, halved under ``reduce_range``. The result is a per-channel QTensor with axis 0
    (``dequantize()`` inverts it). Rows holding NaN or infinity raise ValueError.
    """
    data, scales, zero_points = ops.quantize_per_row_dynamic(_float32_input(input), storage_dtype(dtype),
                                                             bool(reduce_range))
    return QTensor(data, scales, zero_points, 0)


def _method_handler(name: str) -> Callable:
    def handler(self, *args, **kwargs):
        if not isinstance(self, QTensor):
            raise TypeError(f"torch.{name} got a QTensor in an unsupported position")
        return getattr(self, name)(*args, **kwargs)

    return handler


# Torch functions that mean the same as a QTensor method.
for _name in ("flatten", "reshape", "permute", "transpose", "squeeze", "unsqueeze", "chunk", "split", "narrow",
              "clone", "max", "min", "sort", "topk", "mean", "relu", "relu_", "dequantize", "t"):
    _torch_fn = getattr(torch, _name, None)
    if _torch_fn is not None:
        implements(_torch_fn)(_method_handler(_name))
    _tensor_method = getattr(torch.Tensor, _name, None)
    if _tensor_method is not None:
        implements(_tensor_method)(_method_handler(_name))


@implements(torch.equal)
def _equal(a, b) -> bool:
    return isinstance(a, QTensor) and a.equal(b)


@implements(torch.nn.functional.relu)
def _relu(input: QTensor, inplace: bool = False) -> QTensor:
    return input.relu_() if inplace else input.relu()


def call_with_qtensors(module: torch.nn.Module, call: Callable, q: QTensor, *args, **kwargs) -> Any:
    """Eager call of a quantized module with a QTensor input (DESIGN.md).

    The module runs on the integers. Its own input parameters, when it holds them,
    define what it expects, so the data is requantized to them; when it holds none,
    the tensor's parameters are used for this call only. A uint8 result comes back
    as a QTensor with the module's output parameters.
    """
    if q.qscheme() != torch.per_tensor_affine:
        raise TypeError(f"{type(module).__name__} takes per-tensor quantized activations, got a per-channel QTensor")
    if q.dtype != torch.uint8:
        raise TypeError(f"{type(module).__name__} takes quint8 (torch.uint8) activations, got {q.dtype}")
    args = tuple(a._data if isinstance(a, QTensor) else a for a in args)
    if module.has_input_qparams:
        data = q._data
        if (q.q_scale(), q.q_zero_point()) != (module.input_scale, module.input_zero_point):
            data = ops.requantize_per_tensor(data, q.q_scale(), q.q_zero_point(), module.input_scale,
                                             module.input_zero_point, torch.uint8)
        out = call(data, *args, **kwargs)
    else:
        module.set_input_qparams(q.q_scale(), q.q_zero_point())
        try:
            out = call(q._data, *args, **kwargs)
        finally:
            module.has_input_qparams = False
    if isinstance(out, torch.Tensor) and not out.is_floating_point():
        return QTensor(out, module.scale, module.zero_point)
    return out
