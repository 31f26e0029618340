"""The models deployment is tested on (tests/test_deploy.py, tests/test_cpp_example.py).

``direct``: quantized Linear modules put together by hand (static, fused and dynamic), and
``direct-transformer``: a Transformer encoder whose Linears are swapped for dynamic ones by
hand, both without the workflow; the others are the converted models of examples/models.py, as the workflow and
their quantized modules exist on this branch (``missing`` says what is absent).
"""
import os
import sys
from typing import Dict, Tuple

import torch
from torch import nn

import qtorch.nn.quantized as nnq
import qtorch.nn.quantized.dynamic as nnqd
from qtorch.nn.intrinsic.quantized.linear_relu import LinearReLU
from qtorch.nn.quantized.dynamic.transformer import swap_quantized_transformers_
from qtorch.nn.quantized._weights import quantize_weight

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from examples import models as example_models  # noqa: E402


def _weight_observer():
    return torch.ao.quantization.PerChannelMinMaxObserver(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)


def _quantized_linear(cls, linear: nn.Linear, input_qparams: Tuple[float, int],
                      output_qparams: Tuple[float, int]) -> nnq.Linear:
    observer = _weight_observer()
    observer(linear.weight)
    module = cls(linear.in_features, linear.out_features)
    module.set_weight_bias(quantize_weight(linear.weight, observer), linear.bias)
    module.set_input_qparams(*input_qparams)
    module.scale, module.zero_point = output_qparams
    return module


def direct_model() -> nn.Module:
    """float -> dynamic Linear -> (float edge) LinearReLU -> Linear -> float, without the workflow."""
    first = nnqd.Linear.from_float(nn.Linear(24, 40))
    second = _quantized_linear(LinearReLU, nn.Linear(40, 33), (0.04, 131), (0.02, 0))
    third = _quantized_linear(nnq.Linear, nn.Linear(33, 10), (0.02, 0), (0.03, 125))
    third.float_output = True
    return nn.Sequential(first, second, third).eval()


def direct_transformer() -> nn.Module:
    """examples/models.py's Transformer encoder, its Linears swapped for dynamic ones by hand."""
    model = example_models.TransformerEncoderModel().eval()
    for layer in model.encoder.layers:
        layer.linear1 = nnqd.Linear.from_float(layer.linear1)
        layer.linear2 = nnqd.Linear.from_float(layer.linear2)
    model.head = nnqd.Linear.from_float(model.head)
    return swap_quantized_transformers_(model)


def _has_workflow() -> bool:
    import qtorch.quantization as qq

    return hasattr(qq, "prepare") and hasattr(qq, "quantize_dynamic")


def missing(name: str) -> str:
    """Why a model cannot be converted on this branch yet ('' when it can)."""
    if name.startswith("direct"):
        return ""
    if not _has_workflow():
        return "qtorch.quantization's prepare/convert/quantize_dynamic are not here yet"
    name = name.replace("-qat", "")
    # Pooling, hardswish and adds without quantized modules yet run in float (float edges).
    needs = {"resnet": [nnq, "Conv2d"],
             "mobilenet": [nnq, "Conv2d"],
             "lstm": [nnqd, "LSTM"]}.get(name)
    if needs:
        absent = [attr for attr in needs[1:] if not hasattr(needs[0], attr)]
        if absent:
            return f"{needs[0].__name__} has no {', '.join(absent)} yet"
    return ""


MODEL_NAMES = ["direct", "direct-transformer"] + list(example_models.MODELS)


def convert(name: str, seed: int) -> Tuple[nn.Module, torch.Tensor]:
    """The converted model ``name`` with weights and calibration data drawn from ``seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if name == "direct":
            return direct_model(), torch.randn(4, 24)
        if name == "direct-transformer":
            return direct_transformer(), example_models.MODELS["transformer"][1]()
        model, example = example_models.convert_model(name)
        return model.eval(), example


def fresh_input(example: torch.Tensor) -> torch.Tensor:
    return torch.randn_like(example) * 1.5


def bad_inputs(example: torch.Tensor) -> Dict[str, torch.Tensor]:
    wrong_shape = list(example.shape)
    wrong_shape[-1 if example.dim() != 4 else 1] += 1
    return {"dtype": fresh_input(example).to(torch.int64), "shape": torch.randn(wrong_shape)}
