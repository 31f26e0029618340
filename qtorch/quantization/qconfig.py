"""QConfig: which observer (or fake quantizer) factories a module's activations and weights get."""
import warnings
from collections import namedtuple
from typing import Any, Optional

import torch
import torch.nn as nn

from qtorch.quantization.fake_quantize import (
    FakeQuantize,
    default_fake_quant,
    default_per_channel_weight_fake_quant,
    default_weight_fake_quant,
)
from qtorch.quantization.observer import (
    HistogramObserver,
    MovingAverageMinMaxObserver,
    NoopObserver,
    PlaceholderObserver,
    default_debug_observer,
    default_dynamic_quant_observer,
    default_observer,
    default_per_channel_weight_observer,
    default_weight_observer,
)

__all__ = [
    "QConfig",
    "QConfigDynamic",
    "default_qconfig",
    "default_debug_qconfig",
    "default_per_channel_qconfig",
    "default_dynamic_qconfig",
    "float16_dynamic_qconfig",
    "per_channel_dynamic_qconfig",
    "default_qat_qconfig",
    "get_default_qconfig",
    "get_default_qat_qconfig",
    "is_qconfig",
]


def _check_factory(role: str, factory: Any, config: str) -> None:
    if isinstance(factory, nn.Module):
        raise ValueError(
            f"{config} received an observer instance as {role}; pass a class or factory instead "
            "(use MyObserver.with_args(x=1) to override constructor arguments)"
        )
    if factory is not None and not callable(factory):
        raise TypeError(f"{config}.{role} must be an observer class or factory, got {type(factory).__name__}")


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    """Observer factories (classes or ``Observer.with_args(...)``) for a module's output
    activations and its weight; prepare() instantiates them once per module."""

    __slots__ = ()

    def __new__(cls, activation: Any, weight: Any) -> "QConfig":
        _check_factory("activation", activation, "QConfig")
        _check_factory("weight", weight, "QConfig")
        return super().__new__(cls, activation, weight)


class QConfigDynamic(namedtuple("QConfigDynamic", ["activation", "weight"])):
    """The classic name for a dynamic quantization config (only the weight observer matters)."""

    __slots__ = ()

    def __new__(cls, activation: Any = torch.nn.Identity, weight: Any = torch.nn.Identity) -> "QConfigDynamic":
        _check_factory("weight", weight, "QConfigDynamic")
        return super().__new__(cls, activation, weight)


def is_qconfig(value: Any) -> bool:
    """A qconfig of qtorch or of torch.ao (any (activation, weight) namedtuple of factories)."""
    return isinstance(value, tuple) and hasattr(value, "_fields") and tuple(value._fields) == ("activation", "weight")


default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
default_debug_qconfig = QConfig(activation=default_debug_observer, weight=default_weight_observer)
default_per_channel_qconfig = QConfig(activation=default_observer, weight=default_per_channel_weight_observer)
default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer, weight=default_weight_observer)
float16_dynamic_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=torch.float16, is_dynamic=True),
    weight=PlaceholderObserver.with_args(dtype=torch.float16),
)
per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer, weight=default_per_channel_weight_observer)
default_qat_qconfig = QConfig(activation=default_fake_quant, weight=default_weight_fake_quant)

_BACKENDS = ("qtorch", "x86", "fbgemm", "qnnpack", "onednn")


def _check_backend(backend: str) -> None:
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")


def get_default_qconfig(backend: str = "qtorch", version: int = 0) -> QConfig:
    """The default post-training config.

    ``"qtorch"`` (the default): histogram activations over the full 0..255 range and per-channel
    symmetric int8 weights. qtorch's kernels multiply u8 x s8 exactly (no int16 intermediate that
    can saturate), so unlike fbgemm/x86 they need no ``reduce_range``. The torch backend names give
    torch's configs (same observers, same numbers), for comparisons with native models.
    """
    _check_backend(backend)
    if version != 0:
        raise ValueError(f"version must be 0, got {version}")
    if backend in ("fbgemm", "x86"):
        return QConfig(activation=HistogramObserver.with_args(reduce_range=True), weight=default_per_channel_weight_observer)
    if backend == "qnnpack":
        return QConfig(activation=HistogramObserver.with_args(reduce_range=False), weight=default_weight_observer)
    return QConfig(activation=HistogramObserver.with_args(reduce_range=False), weight=default_per_channel_weight_observer)


def get_default_qat_qconfig(backend: str = "qtorch", version: int = 1) -> QConfig:
    """The default quantization-aware-training config (moving-average observers in fake quantizers);
    ``"qtorch"`` uses the full activation range and per-channel weights."""
    _check_backend(backend)
    if version not in (0, 1, None):
        raise ValueError(f"version must be 0 or 1, got {version}")
    reduce_range = backend in ("fbgemm", "x86")
    weight = default_weight_fake_quant if backend == "qnnpack" else default_per_channel_weight_fake_quant
    activation = FakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, reduce_range=reduce_range
    )
    return QConfig(activation=activation, weight=weight)


def assert_valid_qconfig(qconfig: Any, where: str) -> None:
    """TypeError naming the module when a qconfig is not a QConfig (or torch.ao's) or None."""
    if qconfig is None or is_qconfig(qconfig):
        return
    raise TypeError(
        f"qconfig of {where} must be a qtorch.quantization.QConfig (or torch.ao's QConfig) or None, "
        f"got {type(qconfig).__name__}"
    )
