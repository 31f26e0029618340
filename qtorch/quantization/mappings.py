"""Which module convert() puts in place of which: float/QAT/fused module -> quantized module.

Targets are resolved by name when asked for, so each quantized module joins the default
mapping as soon as it exists. Sources include torch.ao's classes (QuantStub, FloatFunctional,
fused and QAT modules), so models written for torch.ao.quantization convert unchanged.
"""
import importlib
from typing import Any, Callable, Dict, List, Optional, Tuple

from torch import nn

import qtorch.nn.intrinsic as nni
import qtorch.nn.intrinsic.qat as nniqat
import qtorch.nn.qat as nnqat
from qtorch.quantization.stubs import DeQuantStub, QuantStub

__all__ = [
    "get_default_static_quant_module_mappings",
    "get_default_qat_module_mappings",
    "get_default_dynamic_quant_module_mappings",
    "get_default_qconfig_propagation_list",
    "PARAMS_KEEPING_MODULES",
    "PASS_THROUGH_MODULES",
]


def _optional(module_path: str, name: str) -> Optional[type]:
    """A class that may not exist (yet, or any more: torch.ao is deprecated)."""
    try:
        return getattr(importlib.import_module(module_path), name, None)
    except Exception:  # noqa: BLE001 - a missing or broken optional module just leaves its classes out
        return None


def _torch_ao(*paths: Tuple[str, str]) -> List[type]:
    found = [_optional(module_path, name) for module_path, name in paths]
    return [cls for cls in found if cls is not None]


# (source classes, (target module, target class name))
def _static_table() -> List[Tuple[List[type], Tuple[str, str]]]:
    nnq, nniq = "qtorch.nn.quantized", "qtorch.nn.intrinsic.quantized"
    return [
        ([QuantStub] + _torch_ao(("torch.ao.quantization", "QuantStub")), (nnq, "Quantize")),
        ([DeQuantStub] + _torch_ao(("torch.ao.quantization", "DeQuantStub")), (nnq, "DeQuantize")),
        ([nn.Linear, nnqat.Linear] + _torch_ao(("torch.ao.nn.qat", "Linear")), (nnq, "Linear")),
        ([nn.Conv2d, nnqat.Conv2d] + _torch_ao(("torch.ao.nn.qat", "Conv2d")), (nnq, "Conv2d")),
        ([nni.ConvBn2d, nniqat.ConvBn2d] + _torch_ao(("torch.ao.nn.intrinsic", "ConvBn2d"), ("torch.ao.nn.intrinsic.qat", "ConvBn2d")), (nnq, "Conv2d")),
        ([nni.ConvReLU2d, nniqat.ConvReLU2d, nni.ConvBnReLU2d, nniqat.ConvBnReLU2d]
         + _torch_ao(("torch.ao.nn.intrinsic", "ConvReLU2d"), ("torch.ao.nn.intrinsic.qat", "ConvReLU2d"),
                     ("torch.ao.nn.intrinsic", "ConvBnReLU2d"), ("torch.ao.nn.intrinsic.qat", "ConvBnReLU2d")),
         (nniq, "ConvReLU2d")),
        ([nni.LinearReLU, nniqat.LinearReLU] + _torch_ao(("torch.ao.nn.intrinsic", "LinearReLU"), ("torch.ao.nn.intrinsic.qat", "LinearReLU")), (nniq, "LinearReLU")),
        ([nn.ReLU], (nnq, "ReLU")),
        ([nn.ReLU6], (nnq, "ReLU6")),
        ([nn.Hardswish], (nnq, "Hardswish")),
        ([nn.MaxPool2d], (nnq, "MaxPool2d")),
        ([nn.AdaptiveAvgPool2d], (nnq, "AdaptiveAvgPool2d")),
        ([nn.AvgPool2d], (nnq, "AvgPool2d")),
        ([_optional(nnq, "FloatFunctional")] + _torch_ao(("torch.ao.nn.quantized", "FloatFunctional")), (nnq, "QFunctional")),
    ]


def _resolve(table: List[Tuple[List[Any], Tuple[str, str]]]) -> Dict[type, type]:
    mapping: Dict[type, type] = {}
    for sources, (module_path, name) in table:
        target = _optional(module_path, name)
        if target is None:
            continue
        for source in sources:
            if source is not None:
                mapping[source] = target
    return mapping


def get_default_static_quant_module_mappings() -> Dict[type, type]:
    """float/QAT/fused module class -> qtorch quantized module class (those that exist)."""
    return _resolve(_static_table())


def get_default_qat_module_mappings() -> Dict[type, type]:
    """float (fused) module class -> QAT module class, used by prepare_qat."""
    mapping: Dict[type, type] = {
        nn.Linear: nnqat.Linear,
        nn.Conv2d: nnqat.Conv2d,
        nni.ConvReLU2d: nniqat.ConvReLU2d,
        nni.LinearReLU: nniqat.LinearReLU,
        nni.ConvBn2d: nniqat.ConvBn2d,
        nni.ConvBnReLU2d: nniqat.ConvBnReLU2d,
    }
    for name, target in (("ConvReLU2d", nniqat.ConvReLU2d), ("LinearReLU", nniqat.LinearReLU),
                         ("ConvBn2d", nniqat.ConvBn2d), ("ConvBnReLU2d", nniqat.ConvBnReLU2d)):
        source = _optional("torch.ao.nn.intrinsic", name)
        if source is not None:
            mapping[source] = target
    return mapping


def get_default_dynamic_quant_module_mappings() -> Dict[type, type]:
    """float module class -> dynamically quantized module class (weights int8 or float16)."""
    nnqd = "qtorch.nn.quantized.dynamic"
    table = [
        ([nn.Linear, _optional("torch.nn.modules.linear", "NonDynamicallyQuantizableLinear")], (nnqd, "Linear")),
        ([nn.LSTM], (nnqd, "LSTM")),
        ([nn.GRU], (nnqd, "GRU")),
        ([nn.LSTMCell], (nnqd, "LSTMCell")),
        ([nn.GRUCell], (nnqd, "GRUCell")),
        ([nn.RNNCell], (nnqd, "RNNCell")),
    ]
    return _resolve(table)


def get_default_qconfig_propagation_list() -> set:
    """Module classes convert() replaces by default (whether or not their quantized class exists
    yet): prepare() gives them observers and maps their inputs."""
    sources = {cls for classes, _ in _static_table() for cls in classes if cls is not None}
    return sources | set(get_default_qat_module_mappings()) | {QuantStub, DeQuantStub}


# Quantized modules whose output parameters are their input's (classic semantics: max pooling,
# ReLU, average pooling keep the scale and zero point of what they receive).
PARAMS_KEEPING_MODULES = ("ReLU", "ReLU6", "MaxPool2d", "AdaptiveAvgPool2d", "AvgPool2d")

# Modules that only reshape or pass values (in eval): calibration looks through them
# (their torch functions are mapped like any other), they are never swapped.
PASS_THROUGH_MODULES: Tuple[type, ...] = (nn.Identity, nn.Dropout, nn.Flatten, nn.Unflatten)
