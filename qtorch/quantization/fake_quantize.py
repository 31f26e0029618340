"""FakeQuantize: quantize-dequantize in float during training, with an observer inside.

Runs on float tensors only (``torch.fake_quantize_per_tensor_affine`` /
``..._per_channel_affine``), whose gradient is the straight-through estimator.
"""
from typing import Any, Tuple

import torch
from torch.nn import Module

from qtorch.quantization.observer import (
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    HistogramObserver,
    _with_args,
    normalize_dtype,
)

__all__ = [
    "FakeQuantizeBase",
    "FakeQuantize",
    "default_fake_quant",
    "default_weight_fake_quant",
    "default_per_channel_weight_fake_quant",
    "default_histogram_fake_quant",
    "disable_fake_quant",
    "enable_fake_quant",
    "disable_observer",
    "enable_observer",
]

_PER_CHANNEL = (torch.per_channel_affine, torch.per_channel_symmetric)
_PER_TENSOR = (torch.per_tensor_affine, torch.per_tensor_symmetric)


class FakeQuantizeBase(Module):
    """Switches for fake quantization and observation, as buffers (saved with the model)."""

    fake_quant_enabled: torch.Tensor
    observer_enabled: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("fake_quant_enabled", torch.tensor([1], dtype=torch.uint8))
        self.register_buffer("observer_enabled", torch.tensor([1], dtype=torch.uint8))

    def enable_fake_quant(self, enabled: bool = True) -> None:
        self.fake_quant_enabled[0] = 1 if enabled else 0

    def disable_fake_quant(self) -> None:
        self.enable_fake_quant(False)

    def enable_observer(self, enabled: bool = True) -> None:
        self.observer_enabled[0] = 1 if enabled else 0

    def disable_observer(self) -> None:
        self.enable_observer(False)

    with_args = classmethod(_with_args)


class FakeQuantize(FakeQuantizeBase):
    """``x_out = (clamp(round(x / scale + zero_point), quant_min, quant_max) - zero_point) * scale``,
    with scale and zero point from the observer (``activation_post_process``) while observation
    is enabled, and frozen once it is disabled."""

    scale: torch.Tensor
    zero_point: torch.Tensor

    def __init__(
        self,
        observer: Any = MovingAverageMinMaxObserver,
        quant_min: Any = None,
        quant_max: Any = None,
        is_dynamic: bool = False,
        **observer_kwargs: Any,
    ) -> None:
        super().__init__()
        if quant_min is not None and quant_max is not None:
            if quant_min > quant_max:
                raise ValueError(f"quant_min ({quant_min}) must be <= quant_max ({quant_max})")
            dtype = observer_kwargs.get("dtype", torch.uint8)
            if hasattr(observer, "p"):
                dtype = getattr(observer.p, "keywords", {}).get("dtype", dtype)
            dtype = normalize_dtype(dtype)
            if torch.iinfo(dtype).min > quant_min or quant_max > torch.iinfo(dtype).max:
                raise ValueError(f"quant_min..quant_max ({quant_min}..{quant_max}) exceeds the range of {dtype}")
            observer_kwargs.update({"quant_min": quant_min, "quant_max": quant_max})
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        self.quant_min = self.activation_post_process.quant_min
        self.quant_max = self.activation_post_process.quant_max
        self.is_dynamic = self.activation_post_process.is_dynamic
        self.register_buffer("scale", torch.tensor([1.0], dtype=torch.float))
        self.register_buffer("zero_point", torch.tensor([0], dtype=torch.int))
        self.dtype = self.activation_post_process.dtype
        self.qscheme = self.activation_post_process.qscheme
        self.ch_axis = getattr(self.activation_post_process, "ch_axis", -1)
        if self.qscheme not in _PER_CHANNEL + _PER_TENSOR:
            raise ValueError(f"FakeQuantize supports per tensor and per channel schemes, got {self.qscheme}")
        self.is_per_channel = self.qscheme in _PER_CHANNEL

    def calculate_qparams(self) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.activation_post_process.calculate_qparams()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if self.observer_enabled[0] == 1:
            self.activation_post_process(X.detach())
            scale, zero_point = self.calculate_qparams()
            scale, zero_point = scale.to(self.scale.device), zero_point.to(self.zero_point.device)
            if self.scale.shape != scale.shape:
                self.scale.resize_(scale.shape)
                self.zero_point.resize_(zero_point.shape)
            self.scale.copy_(scale)
            self.zero_point.copy_(zero_point)
        if self.fake_quant_enabled[0] == 1:
            if self.is_per_channel:
                X = torch.fake_quantize_per_channel_affine(
                    X, self.scale, self.zero_point, self.ch_axis, self.quant_min, self.quant_max
                )
            else:
                X = torch.fake_quantize_per_tensor_affine(X, self.scale, self.zero_point, self.quant_min, self.quant_max)
        return X

    def extra_repr(self) -> str:
        return (
            f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled={self.observer_enabled}, "
            f"quant_min={self.quant_min}, quant_max={self.quant_max}, dtype={self.dtype}, "
            f"qscheme={self.qscheme}, ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}"
        )

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # type: ignore[no-untyped-def]
        # Per-channel scale/zero point change shape after the first observation.
        for name in ("scale", "zero_point"):
            if prefix + name in state_dict:
                getattr(self, name).resize_(state_dict[prefix + name].shape)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)


# torch.ao's defaults for activations use reduce_range (x86 fbgemm int16 saturation);
# these keep the classic numbers. qtorch's kernels need no reduced range: see
# qconfig.get_default_qat_qconfig("qtorch").
default_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
    dtype=torch.uint8, qscheme=torch.per_tensor_affine, reduce_range=True,
)
default_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=torch.int8, qscheme=torch.per_tensor_symmetric, reduce_range=False,
)
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=torch.int8, qscheme=torch.per_channel_symmetric, reduce_range=False, ch_axis=0,
)
default_histogram_fake_quant = FakeQuantize.with_args(
    observer=HistogramObserver, quant_min=0, quant_max=255,
    dtype=torch.uint8, qscheme=torch.per_tensor_affine, reduce_range=True,
)


def _has_switches(mod: Module) -> bool:
    # torch.ao's FakeQuantize instances (from a classic config) count too.
    return isinstance(mod, FakeQuantizeBase) or (
        hasattr(mod, "fake_quant_enabled") and hasattr(mod, "observer_enabled") and hasattr(mod, "enable_observer")
    )


def disable_fake_quant(mod: Module) -> None:
    """``model.apply(disable_fake_quant)``: fake quantizers pass values through unchanged."""
    if _has_switches(mod):
        mod.disable_fake_quant()


def enable_fake_quant(mod: Module) -> None:
    if _has_switches(mod):
        mod.enable_fake_quant()


def disable_observer(mod: Module) -> None:
    """``model.apply(disable_observer)``: freezes every fake quantizer's scale and zero point."""
    if _has_switches(mod):
        mod.disable_observer()


def enable_observer(mod: Module) -> None:
    if _has_switches(mod):
        mod.enable_observer()
