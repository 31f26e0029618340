"""Whole converted models (examples/models.py), batch 1: qtorch scripted ("qtorch") and eager
("qtorch-eager") against the same float model converted by torch.ao.quantization under
each native engine, eager ("native-<engine>") and scripted ("native-<engine>-script").

qtorch-eager / qtorch is what TorchScript saves over eager Python dispatch: on small
models at batch 1 the Python module calls are a large part of the time. Not in --quick
(conversion takes seconds, and CI guards the ops themselves).
"""
import copy
from typing import Any, Callable, List

import torch
from torch import nn
from torch.ao import quantization as ao
from torch.ao.nn.quantized import FloatFunctional as AoFloatFunctional

from benchmarks.harness import Case, Contender, native_engine, quiet_native
from examples import models as example_models

STATIC_MODELS = ["resnet", "mobilenet"]


def _with_torch_ao_stubs(model: nn.Module) -> nn.Module:
    """The model with torch.ao's stubs and FloatFunctional where it has qtorch's, for torch.ao's convert."""
    replacements = {"QuantStub": ao.QuantStub, "DeQuantStub": ao.DeQuantStub, "FloatFunctional": AoFloatFunctional}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            cls = replacements.get(type(child).__name__)
            if cls is not None and type(child).__module__.startswith("qtorch"):
                setattr(parent, name, cls())
    return model


def _native(float_model: nn.Module, example: torch.Tensor, engine: str) -> nn.Module:
    with native_engine(engine), quiet_native():
        model = _with_torch_ao_stubs(copy.deepcopy(float_model)).eval()
        model = ao.fuse_modules(model, model.fuse_groups())
        model.qconfig = ao.get_default_qconfig(engine)
        ao.prepare(model, inplace=True)
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn_like(example))
        return ao.convert(model, inplace=True)


def _call(model: Any, x: torch.Tensor) -> Callable[[], object]:
    return lambda: model(x)


def model_case(name: str) -> Case:
    float_model, example = example_models.float_model(name)
    qmodel = example_models.quantize_static(copy.deepcopy(float_model), example)
    x = torch.randn_like(example)
    contenders = [Contender("qtorch", _call(torch.jit.script(qmodel), x)),
                  Contender("qtorch-eager", _call(qmodel, x))]
    for engine in ("x86", "fbgemm", "onednn"):
        if engine not in torch.backends.quantized.supported_engines:
            continue
        native = _native(float_model, example, engine)
        with native_engine(engine), quiet_native():
            scripted = torch.jit.script(native)
        contenders += [Contender(f"native-{engine}", _call(native, x), engine),
                       Contender(f"native-{engine}-script", _call(scripted, x), engine)]
    return Case("model", f"{name} {'x'.join(map(str, example.shape))}", contenders)


def cases(quick: bool) -> List[Case]:
    if quick:
        return []
    import qtorch.nn.quantized as nnq
    import qtorch.quantization as qq

    if not (hasattr(qq, "prepare") and hasattr(nnq, "Conv2d")):
        return []  # the workflow or the conv modules are not here yet
    return [model_case(name) for name in STATIC_MODELS]
