"""Observers: collect statistics of float tensors during calibration and turn them
into quantization parameters (scale, zero point).

The arithmetic is that of ``torch.ao.quantization.observer`` (same numbers on the
same data), but dtypes are plain integer dtypes: ``torch.uint8`` for activations,
``torch.int8`` for weights. ``torch.quint8`` / ``torch.qint8`` given by a user's
config are accepted and mapped (they are only dtype objects here; no quantized
tensor is ever created).
"""
import warnings
from functools import partial
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from qtorch._dtypes import _TORCH_QUANTIZED

__all__ = [
    "ObserverBase",
    "UniformQuantizationObserverBase",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "PerChannelMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver",
    "HistogramObserver",
    "PlaceholderObserver",
    "RecordingObserver",
    "NoopObserver",
    "default_observer",
    "default_weight_observer",
    "default_per_channel_weight_observer",
    "default_histogram_observer",
    "default_dynamic_quant_observer",
    "default_placeholder_observer",
    "default_debug_observer",
    "default_float16_observer",
    "normalize_dtype",
]

_FLOAT32_EPS = torch.finfo(torch.float32).eps


def normalize_dtype(dtype: Any) -> Any:
    """Maps torch's deprecated quantized dtypes onto qtorch's plain integer dtypes (others pass)."""
    return _TORCH_QUANTIZED.get(dtype, dtype)


_PER_TENSOR = (torch.per_tensor_affine, torch.per_tensor_symmetric)
_PER_CHANNEL = (torch.per_channel_affine, torch.per_channel_symmetric)
_SYMMETRIC = (torch.per_tensor_symmetric, torch.per_channel_symmetric)


class _PartialWrapper:
    """A factory of fresh instances with preset arguments (``Observer.with_args(...)``)."""

    def __init__(self, p: partial) -> None:
        self.p = p
        self.callable_args: Dict[str, Any] = {}

    def __call__(self, *args: Any, **keywords: Any) -> Any:
        for arg_name, make in self.callable_args.items():
            if arg_name not in keywords:
                keywords = {**keywords, arg_name: make()}
        return self.p(*args, **keywords)

    def __repr__(self) -> str:
        return self.p.__repr__() + self.callable_args.__repr__()

    def with_args(self, **kwargs: Any) -> "_PartialWrapper":
        return _with_args(self, **kwargs)

    def with_callable_args(self, **kwargs: Any) -> "_PartialWrapper":
        result = _PartialWrapper(p=self.p)
        result.callable_args = {**self.callable_args, **kwargs}
        return result


def _with_args(cls_or_self: Any, **kwargs: Any) -> _PartialWrapper:
    return _PartialWrapper(partial(cls_or_self, **kwargs))


def _with_callable_args(cls_or_self: Any, **kwargs: Any) -> _PartialWrapper:
    return _PartialWrapper(partial(cls_or_self)).with_callable_args(**kwargs)


def _qrange(dtype: torch.dtype, reduce_range: bool, quant_min: Optional[int], quant_max: Optional[int]) -> Tuple[int, int]:
    """The integer range: the dtype's 8-bit range unless the user gave one; halved by reduce_range."""
    if quant_min is not None and quant_max is not None:
        if not quant_min <= 0 <= quant_max:
            raise ValueError(f"quant_min..quant_max must include 0, got {quant_min}..{quant_max}")
        if quant_min >= quant_max:
            raise ValueError(f"quant_min must be less than quant_max, got {quant_min} and {quant_max}")
        if dtype == torch.int8 and not (0 < quant_max - quant_min + 1 <= 256):
            raise ValueError(f"quant_min..quant_max exceeds 8 bits: {quant_min}..{quant_max}")
        if reduce_range:
            return quant_min // 2, quant_max // 2
        return quant_min, quant_max
    if dtype == torch.int8:
        return (-64, 63) if reduce_range else (-128, 127)
    if dtype == torch.uint8:
        return (0, 127) if reduce_range else (0, 255)
    if dtype == torch.int32:
        return -(2**31), 2**31 - 1
    raise ValueError(f"dtype must be torch.uint8 (quint8) or torch.int8 (qint8), got {dtype}")


def _min_max_valid(min_val: torch.Tensor, max_val: torch.Tensor) -> bool:
    if min_val.numel() == 0 or max_val.numel() == 0:
        warnings.warn("must run observer before calling calculate_qparams. Returning default values.", stacklevel=3)
        return False
    if min_val.dim() == 0 or max_val.dim() == 0:
        if min_val == float("inf") and max_val == float("-inf"):
            warnings.warn("must run observer before calling calculate_qparams. Returning default values.", stacklevel=3)
            return False
        if min_val > max_val:
            raise ValueError(f"observer min {min_val} is greater than max {max_val}")
    elif torch.any(min_val > max_val):
        raise ValueError(f"observer min {min_val} is greater than max {max_val}")
    return True


class ObserverBase(nn.Module):
    """Base of all observers: ``forward`` records statistics and returns its input unchanged;
    ``calculate_qparams`` returns (scale, zero_point) tensors."""

    def __init__(self, dtype: Any, is_dynamic: bool = False) -> None:
        super().__init__()
        self.dtype = normalize_dtype(dtype)
        self.is_dynamic = is_dynamic

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def calculate_qparams(self, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    with_args = classmethod(_with_args)
    with_callable_args = classmethod(_with_callable_args)


class UniformQuantizationObserverBase(ObserverBase):
    """Common base of the affine/symmetric observers: dtype, qscheme, range, eps."""

    eps: torch.Tensor

    def __init__(
        self,
        dtype: Any = torch.uint8,
        qscheme: Any = torch.per_tensor_affine,
        reduce_range: bool = False,
        quant_min: Optional[int] = None,
        quant_max: Optional[int] = None,
        factory_kwargs: Optional[Dict[str, Any]] = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        factory_kwargs = torch.nn.factory_kwargs(factory_kwargs)
        super().__init__(dtype=dtype, is_dynamic=is_dynamic, **kwargs)
        if qscheme not in _PER_TENSOR + _PER_CHANNEL:
            raise ValueError(
                f"qscheme must be one of per_tensor_affine, per_tensor_symmetric, per_channel_affine, "
                f"per_channel_symmetric, got {qscheme}"
            )
        if self.dtype not in (torch.uint8, torch.int8, torch.int32):
            raise ValueError(f"dtype must be torch.uint8 (quint8) or torch.int8 (qint8), got {dtype}")
        self.qscheme = qscheme
        self.reduce_range = reduce_range
        self.register_buffer("eps", torch.tensor([eps], **factory_kwargs))
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        self.quant_min, self.quant_max = _qrange(self.dtype, reduce_range, quant_min, quant_max)
        if qscheme in _SYMMETRIC and reduce_range and self.dtype == torch.uint8:
            raise NotImplementedError("Cannot reduce range for symmetric quantization for quint8")

    def _calculate_qparams(self, min_val: torch.Tensor, max_val: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scale and zero point from running min/max, per tensor or per channel (torch.ao's formulas)."""
        if not _min_max_valid(min_val, max_val):
            return torch.tensor([1.0], device=min_val.device.type), torch.tensor([0], device=min_val.device.type)
        quant_min, quant_max = self.quant_min, self.quant_max
        min_val_neg = torch.min(min_val, torch.zeros_like(min_val))
        max_val_pos = torch.max(max_val, torch.zeros_like(max_val))
        device = min_val_neg.device
        zero_point = torch.zeros(min_val_neg.size(), dtype=torch.int64, device=device)
        if self.qscheme in _SYMMETRIC:
            max_val_pos = torch.max(-min_val_neg, max_val_pos)
            scale = max_val_pos / (float(quant_max - quant_min) / 2)
            scale = torch.max(scale, self.eps)
            if self.dtype == torch.uint8:
                midpoint = (quant_min + quant_max) // 2 if self.has_customized_qrange else 128
                zero_point = zero_point.new_full(zero_point.size(), midpoint)
        else:
            scale = (max_val_pos - min_val_neg) / float(quant_max - quant_min)
            scale = torch.max(scale, self.eps)
            zero_point = quant_min - torch.round(min_val_neg / scale).to(torch.int)
            zero_point = torch.clamp(zero_point, quant_min, quant_max)
        if len(scale.shape) == 0:
            scale = torch.tensor([float(scale)], dtype=scale.dtype, device=device)
        if len(zero_point.shape) == 0:
            zero_point = torch.tensor([int(zero_point)], dtype=zero_point.dtype, device=device)
        return scale, zero_point

    def reset_min_max_vals(self) -> None:
        raise NotImplementedError("Cannot reset min/max values in the given observer.")


class MinMaxObserver(UniformQuantizationObserverBase):
    """Running minimum and maximum of every tensor seen; per tensor."""

    min_val: torch.Tensor
    max_val: torch.Tensor

    def __init__(
        self,
        dtype: Any = torch.uint8,
        qscheme: Any = torch.per_tensor_affine,
        reduce_range: bool = False,
        quant_min: Optional[int] = None,
        quant_max: Optional[int] = None,
        factory_kwargs: Optional[Dict[str, Any]] = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        if qscheme not in _PER_TENSOR:
            raise NotImplementedError(
                f"{type(self).__name__}'s qscheme must be per_tensor_affine or per_tensor_symmetric, got {qscheme}"
            )
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic, **kwargs)
        factory_kwargs = torch.nn.factory_kwargs(factory_kwargs)
        self.register_buffer("min_val", torch.tensor(float("inf"), **factory_kwargs))
        self.register_buffer("max_val", torch.tensor(float("-inf"), **factory_kwargs))

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach().to(self.min_val.dtype)
        min_val_cur, max_val_cur = torch.aminmax(x)
        self.min_val.copy_(torch.min(min_val_cur, self.min_val))
        self.max_val.copy_(torch.max(max_val_cur, self.max_val))
        return x_orig

    def calculate_qparams(self) -> Tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def reset_min_max_vals(self) -> None:
        self.min_val.copy_(torch.tensor(float("inf")))
        self.max_val.copy_(torch.tensor(float("-inf")))


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Exponential moving average of each tensor's min and max (``averaging_constant``)."""

    def __init__(
        self,
        averaging_constant: float = 0.01,
        dtype: Any = torch.uint8,
        qscheme: Any = torch.per_tensor_affine,
        reduce_range: bool = False,
        quant_min: Optional[int] = None,
        quant_max: Optional[int] = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        if is_dynamic and averaging_constant != 1:
            raise NotImplementedError("MovingAverageMinMaxObserver supports dynamic quantization only with averaging_constant=1")
        self.averaging_constant = averaging_constant
        super().__init__(
            dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, quant_min=quant_min,
            quant_max=quant_max, eps=eps, is_dynamic=is_dynamic, **kwargs,
        )

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach().to(self.min_val.dtype)
        min_val, max_val = self.min_val, self.max_val
        if min_val == float("inf") and max_val == float("-inf"):
            min_val, max_val = torch.aminmax(x)
        else:
            min_val_cur, max_val_cur = torch.aminmax(x)
            min_val = min_val + self.averaging_constant * (min_val_cur - min_val)
            max_val = max_val + self.averaging_constant * (max_val_cur - max_val)
        self.min_val.copy_(min_val)
        self.max_val.copy_(max_val)
        return x_orig


def _per_channel_rows(x: torch.Tensor, ch_axis: int) -> torch.Tensor:
    """The tensor as [channels, everything else]."""
    axes = list(range(x.dim()))
    axes[ch_axis], axes[0] = 0, ch_axis
    return torch.flatten(x.permute(axes), start_dim=1)


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """Running min and max per channel along ``ch_axis`` (weights: output channels)."""

    min_val: torch.Tensor
    max_val: torch.Tensor

    def __init__(
        self,
        ch_axis: int = 0,
        dtype: Any = torch.uint8,
        qscheme: Any = torch.per_channel_affine,
        reduce_range: bool = False,
        quant_min: Optional[int] = None,
        quant_max: Optional[int] = None,
        factory_kwargs: Optional[Dict[str, Any]] = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        if qscheme not in _PER_CHANNEL:
            raise NotImplementedError(
                f"{type(self).__name__}'s qscheme must be per_channel_affine or per_channel_symmetric, got {qscheme}"
            )
        if is_dynamic:
            raise NotImplementedError(f"{type(self).__name__} doesn't support dynamic quantization")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic, **kwargs)
        factory_kwargs = torch.nn.factory_kwargs(factory_kwargs)
        self.ch_axis = ch_axis
        self.register_buffer("min_val", torch.tensor([], **factory_kwargs))
        self.register_buffer("max_val", torch.tensor([], **factory_kwargs))

    def _store(self, min_val: torch.Tensor, max_val: torch.Tensor) -> None:
        self.min_val.resize_(min_val.shape)
        self.max_val.resize_(max_val.shape)
        self.min_val.copy_(min_val)
        self.max_val.copy_(max_val)

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        if x_orig.numel() == 0:
            return x_orig
        y = _per_channel_rows(x_orig.detach(), self.ch_axis).to(self.min_val.dtype)
        min_val_cur, max_val_cur = torch.aminmax(y, dim=1)
        if self.min_val.numel() != 0 and self.max_val.numel() != 0:
            min_val_cur = torch.min(min_val_cur, self.min_val)
            max_val_cur = torch.max(max_val_cur, self.max_val)
        self._store(min_val_cur, max_val_cur)
        return x_orig

    def calculate_qparams(self) -> Tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # type: ignore[no-untyped-def]
        # The buffers start empty: take the saved shapes before the default copy.
        for name in ("min_val", "max_val"):
            if prefix + name in state_dict:
                getattr(self, name).resize_(state_dict[prefix + name].shape)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def reset_min_max_vals(self) -> None:
        self.min_val = torch.rand(0)
        self.max_val = torch.rand(0)


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Exponential moving average of the per-channel min and max."""

    def __init__(
        self,
        averaging_constant: float = 0.01,
        ch_axis: int = 0,
        dtype: Any = torch.uint8,
        qscheme: Any = torch.per_channel_affine,
        reduce_range: bool = False,
        quant_min: Optional[int] = None,
        quant_max: Optional[int] = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            ch_axis=ch_axis, dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, quant_min=quant_min,
            quant_max=quant_max, eps=eps, is_dynamic=is_dynamic, **kwargs,
        )
        self.averaging_constant = averaging_constant

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        if x_orig.numel() == 0:
            return x_orig
        y = _per_channel_rows(x_orig.detach().to(self.min_val.dtype), self.ch_axis)
        min_val_cur, max_val_cur = torch.aminmax(y, dim=1)
        if self.min_val.numel() != 0 and self.max_val.numel() != 0:
            min_val_cur = self.min_val + self.averaging_constant * (min_val_cur - self.min_val)
            max_val_cur = self.max_val + self.averaging_constant * (max_val_cur - self.max_val)
        self._store(min_val_cur, max_val_cur)
        return x_orig


class HistogramObserver(UniformQuantizationObserverBase):
    """A running histogram of the values; ``calculate_qparams`` picks the range that
    minimises the L2 quantization error (the classic caffe2 norm-minimisation search),
    clipping outliers."""

    histogram: torch.Tensor
    min_val: torch.Tensor
    max_val: torch.Tensor

    def __init__(
        self,
        bins: int = 2048,
        dtype: Any = torch.uint8,
        qscheme: Any = torch.per_tensor_affine,
        reduce_range: bool = False,
        quant_min: Optional[int] = None,
        quant_max: Optional[int] = None,
        factory_kwargs: Optional[Dict[str, Any]] = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        if qscheme not in _PER_TENSOR:
            raise NotImplementedError(f"HistogramObserver's qscheme must be per_tensor_affine or per_tensor_symmetric, got {qscheme}")
        if is_dynamic:
            raise NotImplementedError("HistogramObserver doesn't support dynamic quantization")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic, **kwargs)
        factory_kwargs = torch.nn.factory_kwargs(factory_kwargs)
        self.bins = bins
        self.register_buffer("histogram", torch.zeros(self.bins, **factory_kwargs))
        self.register_buffer("min_val", torch.tensor(float("inf"), **factory_kwargs))
        self.register_buffer("max_val", torch.tensor(float("-inf"), **factory_kwargs))
        self.dst_nbins = 2 ** torch.iinfo(self.dtype).bits
        self.upsample_rate = 16  # finer bins when re-binning an old histogram into a wider range

    @staticmethod
    def _get_norm(delta_begin: torch.Tensor, delta_end: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
        """L2 norm of values spread uniformly over [delta_begin, delta_end]: density * (end^3 - begin^3) / 3."""
        return density * (delta_end * delta_end * delta_end - delta_begin * delta_begin * delta_begin) / 3

    def _compute_quantization_error(self, next_start_bin: int, next_end_bin: int) -> float:
        bin_width = (self.max_val.item() - self.min_val.item()) / self.bins
        dst_bin_width = bin_width * (next_end_bin - next_start_bin + 1) / self.dst_nbins
        if dst_bin_width == 0.0:
            return 0.0
        src_bin = torch.arange(self.bins, device=self.histogram.device)
        src_bin_begin = (src_bin - next_start_bin) * bin_width
        src_bin_end = src_bin_begin + bin_width
        dst_bin_of_begin = torch.clamp(torch.div(src_bin_begin, dst_bin_width, rounding_mode="floor"), 0, self.dst_nbins - 1)
        dst_bin_of_begin_center = (dst_bin_of_begin + 0.5) * dst_bin_width
        dst_bin_of_end = torch.clamp(torch.div(src_bin_end, dst_bin_width, rounding_mode="floor"), 0, self.dst_nbins - 1)
        density = self.histogram / bin_width
        norm = torch.zeros(self.bins, device=self.histogram.device)
        delta_begin = src_bin_begin - dst_bin_of_begin_center
        norm += self._get_norm(delta_begin, torch.ones(self.bins, device=self.histogram.device) * (dst_bin_width / 2), density)
        norm += (dst_bin_of_end - dst_bin_of_begin - 1) * self._get_norm(
            torch.tensor(-dst_bin_width / 2), torch.tensor(dst_bin_width / 2), density
        )
        dst_bin_of_end_center = dst_bin_of_end * dst_bin_width + dst_bin_width / 2
        norm += self._get_norm(torch.tensor(-dst_bin_width / 2), src_bin_end - dst_bin_of_end_center, density)
        return norm.sum().item()

    def _non_linear_param_search(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Shrinks [min, max] from whichever side holds less mass while the L2 error falls."""
        bin_width = (self.max_val - self.min_val) / self.bins
        total = torch.sum(self.histogram).item()
        cumulative = torch.cumsum(self.histogram, dim=0).tolist()
        stepsize = 1e-5
        alpha, beta = 0.0, 1.0
        start_bin, end_bin = 0, self.bins - 1
        norm_min = float("inf")
        while alpha < beta:
            next_alpha = alpha + stepsize
            next_beta = beta - stepsize
            left, right = start_bin, end_bin
            while left < end_bin and cumulative[left] < next_alpha * total:
                left += 1
            while right > start_bin and cumulative[right] > next_beta * total:
                right -= 1
            next_start_bin, next_end_bin = start_bin, end_bin
            if (left - start_bin) > (end_bin - right):
                next_start_bin = left
                alpha = next_alpha
            else:
                next_end_bin = right
                beta = next_beta
            if next_start_bin == start_bin and next_end_bin == end_bin:
                continue
            norm = self._compute_quantization_error(next_start_bin, next_end_bin)
            if norm > norm_min:
                break
            norm_min = norm
            start_bin, end_bin = next_start_bin, next_end_bin
        return self.min_val + bin_width * start_bin, self.min_val + bin_width * (end_bin + 1)

    def _upscale_histogram(self, histogram, orig_min, orig_max, update_min, update_max):  # type: ignore[no-untyped-def]
        histogram = histogram.repeat_interleave(self.upsample_rate) / self.upsample_rate
        bin_size = (orig_max - orig_min) / (self.bins * self.upsample_rate)
        mid_points = (
            torch.linspace(orig_min, orig_max, self.bins * self.upsample_rate + 1, device=orig_min.device)[:-1].to(histogram.device)
            + 0.5 * bin_size
        )
        boundaries = torch.linspace(update_min, update_max, self.bins + 1, device=update_min.device).to(histogram.device)
        buckets = torch.bucketize(mid_points, boundaries, right=True) - 1
        buckets[buckets >= self.bins] = self.bins - 1
        buckets[buckets < 0] = 0
        return torch.bincount(buckets, weights=histogram, minlength=self.bins)

    def _combine_histograms(self, orig_hist, orig_min, orig_max, update_hist, update_min, update_max):  # type: ignore[no-untyped-def]
        if update_min == orig_min and update_max == orig_max:
            return orig_hist + update_hist
        if orig_min == orig_max:
            bin_value = torch.sum(orig_hist)
            return torch.histc(orig_min, bins=self.bins, min=update_min, max=update_max) * bin_value + update_hist
        return update_hist + self._upscale_histogram(orig_hist, orig_min, orig_max, update_min, update_max)

    def _set(self, name: str, value: torch.Tensor) -> None:
        buffer = getattr(self, name)
        buffer.detach_().resize_(value.shape)
        buffer.copy_(value)

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach()
        x_min, x_max = torch.aminmax(x)
        if x_min == -torch.inf or x_max == torch.inf:
            warnings.warn("torch.inf detected in input tensor, ignoring input", stacklevel=2)
            x = x[x.abs() != torch.inf]
            if x.numel() == 0:
                return x_orig
            x_min, x_max = torch.aminmax(x)
        current_min, current_max = self.min_val, self.max_val
        if current_min == float("inf") or current_max == float("-inf"):
            self._set("min_val", x_min)
            self._set("max_val", x_max)
            self._set("histogram", torch.histc(x, self.bins, min=x_min, max=x_max))  # type: ignore[arg-type]
            return x_orig
        new_min = torch.min(current_min, x_min).detach()
        new_max = torch.max(current_max, x_max).detach()
        update_histogram = torch.histc(x, self.bins, min=new_min, max=new_max).to(self.histogram.device)  # type: ignore[arg-type]
        if new_min == current_min and new_max == current_max:
            self._set("histogram", self.histogram + update_histogram)
        else:
            combined = self._combine_histograms(self.histogram, current_min, current_max, update_histogram, new_min, new_max)
            self._set("histogram", combined)
            self._set("min_val", new_min)
            self._set("max_val", new_max)
        return x_orig

    def calculate_qparams(self) -> Tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        if self.min_val == float("inf") and self.max_val == float("-inf"):
            warnings.warn("must run observer before calling calculate_qparams. Returning default scale and zero point", stacklevel=2)
            return torch.tensor([1.0], device=self.min_val.device.type), torch.tensor([0], device=self.min_val.device.type)
        new_min, new_max = self._non_linear_param_search()
        return self._calculate_qparams(new_min, new_max)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class PlaceholderObserver(ObserverBase):
    """Observes nothing; carries dtype (and range) to ``from_float`` (dynamic and float16 quantization)."""

    def __init__(
        self,
        dtype: Any = torch.float32,
        custom_op_name: str = "",
        compute_dtype: Any = None,
        quant_min: Optional[int] = None,
        quant_max: Optional[int] = None,
        qscheme: Any = None,
        eps: Optional[float] = None,
        is_dynamic: bool = False,
    ) -> None:
        super().__init__(dtype=dtype, is_dynamic=is_dynamic or bool(compute_dtype))
        self.qscheme = torch.per_tensor_affine if qscheme is None else qscheme
        self.quant_min = quant_min
        self.quant_max = quant_max
        self.eps = _FLOAT32_EPS if eps is None else eps
        self.custom_op = custom_op_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, is_dynamic={self.is_dynamic}"

    def calculate_qparams(self) -> Any:  # type: ignore[override]
        raise RuntimeError("calculate_qparams should not be called for PlaceholderObserver")


class RecordingObserver(ObserverBase):
    """Debugging: keeps a copy of every tensor seen (``get_tensor_value``)."""

    def __init__(self, dtype: Any = torch.uint8) -> None:
        super().__init__(dtype=dtype, is_dynamic=False)
        self.tensor_val: List[Optional[torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.tensor_val.append(x.clone())
        return x

    def calculate_qparams(self) -> Any:  # type: ignore[override]
        raise RuntimeError("calculate_qparams should not be called for RecordingObserver")

    def get_tensor_value(self) -> List[Optional[torch.Tensor]]:
        return self.tensor_val


class NoopObserver(ObserverBase):
    """Observes nothing; carries dtype (float16 by default) to ``from_float``."""

    def __init__(self, dtype: Any = torch.float16, custom_op_name: str = "") -> None:
        super().__init__(dtype=dtype, is_dynamic=False)
        self.custom_op = custom_op_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def calculate_qparams(self) -> Any:  # type: ignore[override]
        raise RuntimeError("calculate_qparams should not be called for NoopObserver")


# The classic defaults. quant_min=0, quant_max=127 (as in torch.ao) keeps the
# debugging default_observer identical to torch's; qtorch's own qconfigs use the full range.
default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_placeholder_observer = PlaceholderObserver
default_debug_observer = RecordingObserver
default_weight_observer = MinMaxObserver.with_args(dtype=torch.int8, qscheme=torch.per_tensor_symmetric)
default_histogram_observer = HistogramObserver.with_args(quant_min=0, quant_max=127)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(dtype=torch.int8, qscheme=torch.per_channel_symmetric)
default_dynamic_quant_observer = PlaceholderObserver.with_args(dtype=torch.uint8, quant_min=0, quant_max=255, is_dynamic=True)
default_float16_observer = NoopObserver.with_args(dtype=torch.float16)
