"""Small float models in the styles qtorch must deploy, and their converted forms.

- ``mlp``: QuantStub, Linear+ReLU blocks, DeQuantStub (torch.ao stubs).
- ``resnet``: a ResNet-style convnet written for torch.ao.quantization eager mode (its
  stubs and FloatFunctional for the residual add).
- ``mobilenet``: a MobileNetV2-style convnet with depthwise convs and hardswish written
  for qtorch.quantization, whose forward calls F.adaptive_avg_pool2d and torch.flatten.
- ``transformer``: a Transformer encoder, dynamically quantized.
- ``lstm``: an LSTM with a linear head, dynamically quantized.
- ``resnet-qat``: the ResNet-style model through quantization-aware training.

``convert_model(name)`` builds one with random weights and returns (converted model, an
example input); used by tests/test_deploy.py, the C++ example test and benchmarks.
"""
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.ao import quantization as ao
from torch.ao.nn.quantized import FloatFunctional as AoFloatFunctional


class MLP(nn.Module):
    def __init__(self, in_features: int = 40, hidden: int = 72, classes: int = 10) -> None:
        super().__init__()
        self.quant = ao.QuantStub()
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(hidden, classes)
        self.dequant = ao.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.fc1(self.quant(x)))
        x = self.relu2(self.fc2(x))
        return self.dequant(self.fc3(x))

    def fuse_groups(self) -> List[List[str]]:
        return [["fc1", "relu1"], ["fc2", "relu2"]]


class BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or channels_in != channels:
            self.downsample = nn.Sequential(nn.Conv2d(channels_in, channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(channels))
        self.add_relu = AoFloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.add_relu.add_relu(out, identity)

    def fuse_groups(self, prefix: str) -> List[List[str]]:
        groups = [[f"{prefix}.conv1", f"{prefix}.bn1", f"{prefix}.relu1"], [f"{prefix}.conv2", f"{prefix}.bn2"]]
        if self.downsample is not None:
            groups.append([f"{prefix}.downsample.0", f"{prefix}.downsample.1"])
        return groups


class ResNetish(nn.Module):
    """ResNet-style, written for torch.ao.quantization eager mode (ao stubs, ao FloatFunctional)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.quant = ao.QuantStub()
        self.conv1 = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)
        self.dequant = ao.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.quant(x)))))
        x = self.layer2(self.layer1(x))
        x = self.avgpool(x)
        x = x.reshape(x.shape[0], -1)
        return self.dequant(self.fc(x))

    def fuse_groups(self) -> List[List[str]]:
        return [["conv1", "bn1", "relu"]] + self.layer1.fuse_groups("layer1") + self.layer2.fuse_groups("layer2")


def _stubs_and_functional() -> Tuple[Any, Any, Any]:
    """qtorch's QuantStub, DeQuantStub and FloatFunctional (torch.ao's where qtorch has none yet)."""
    try:
        from qtorch.quantization import DeQuantStub, QuantStub
    except ImportError:
        QuantStub, DeQuantStub = ao.QuantStub, ao.DeQuantStub
    try:
        from qtorch.nn.quantized import FloatFunctional  # type: ignore[attr-defined]
    except ImportError:
        FloatFunctional = AoFloatFunctional
    return QuantStub, DeQuantStub, FloatFunctional


class InvertedResidual(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = channels_in * expand
        self.use_residual = stride == 1 and channels_in == channels_out
        self.expand = nn.Conv2d(channels_in, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.act1 = nn.Hardswish()
        self.depthwise = nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.act2 = nn.Hardswish()
        self.project = nn.Conv2d(hidden, channels_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels_out)
        self.skip_add = _stubs_and_functional()[2]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.expand(x)))
        out = self.act2(self.bn2(self.depthwise(out)))
        out = self.bn3(self.project(out))
        if self.use_residual:
            return self.skip_add.add(x, out)
        return out

    def fuse_groups(self, prefix: str) -> List[List[str]]:
        return [[f"{prefix}.expand", f"{prefix}.bn1"], [f"{prefix}.depthwise", f"{prefix}.bn2"],
                [f"{prefix}.project", f"{prefix}.bn3"]]


class MobileNetV2ish(nn.Module):
    """MobileNetV2-style with hardswish, written for qtorch.quantization; forward calls
    F.adaptive_avg_pool2d and torch.flatten (a float edge before the classifier)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        QuantStub, DeQuantStub, _ = _stubs_and_functional()
        self.quant = QuantStub()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.stem_relu = nn.ReLU6()
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 1, 2), InvertedResidual(16, 24, 2, 3),
                                    InvertedResidual(24, 24, 1, 3))
        self.head = nn.Conv2d(24, 64, 1, bias=False)
        self.head_bn = nn.BatchNorm2d(64)
        self.head_relu = nn.ReLU()
        self.classifier = nn.Linear(64, classes)
        self.dequant = DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_relu(self.stem_bn(self.stem(self.quant(x))))
        x = self.blocks(x)
        x = self.head_relu(self.head_bn(self.head(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        x = torch.flatten(x, 1)
        return self.dequant(self.classifier(x))

    def fuse_groups(self) -> List[List[str]]:
        groups = [["stem", "stem_bn"], ["head", "head_bn", "head_relu"]]
        for i, block in enumerate(self.blocks):
            groups += block.fuse_groups(f"blocks.{i}")
        return groups


class TransformerEncoderModel(nn.Module):
    def __init__(self, d_model: int = 32, heads: int = 4, layers: int = 2, classes: int = 10) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class LSTMModel(nn.Module):
    def __init__(self, features: int = 16, hidden: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)


def _randomize_batch_norms(model: nn.Module) -> None:
    """Non-trivial running statistics, so fusion folds something."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)


def quantize_static(model: nn.Module, example: torch.Tensor, batches: int = 3) -> nn.Module:
    """Fuse, prepare, calibrate on random batches and ``example``, convert (qtorch.quantization)."""
    import qtorch.quantization as qq

    model.eval()
    model = qq.fuse_modules(model, model.fuse_groups())
    model.qconfig = qq.default_qconfig
    qq.prepare(model, inplace=True)
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn_like(example))
        model(example)
    return qq.convert(model, inplace=True)


def quantize_aware_training(model: nn.Module, example: torch.Tensor, steps: int = 3) -> nn.Module:
    """Fuse for QAT, prepare_qat, a few SGD steps on random data and labels, convert."""
    import qtorch.quantization as qq

    model.train()
    model = qq.fuse_modules_qat(model, model.fuse_groups())
    model.qconfig = qq.default_qat_qconfig
    qq.prepare_qat(model, inplace=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        x = torch.randn_like(example)
        logits = model(x)
        loss = F.cross_entropy(logits, torch.randint(0, logits.shape[-1], logits.shape[:1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        model(example)
    return qq.convert(model, inplace=True)


def quantize_dynamic(model: nn.Module) -> nn.Module:
    import qtorch.quantization as qq

    return qq.quantize_dynamic(model.eval())


# name -> (float model factory, example input factory, converter)
MODELS: Dict[str, Tuple[Callable[[], nn.Module], Callable[[], torch.Tensor], str]] = {
    "mlp": (MLP, lambda: torch.randn(5, 40), "static"),
    "resnet": (ResNetish, lambda: torch.randn(1, 3, 32, 32), "static"),
    "mobilenet": (MobileNetV2ish, lambda: torch.randn(1, 3, 32, 32), "static"),
    "resnet-qat": (ResNetish, lambda: torch.randn(2, 3, 32, 32), "qat"),
    "transformer": (TransformerEncoderModel, lambda: torch.randn(2, 7, 32), "dynamic"),
    "lstm": (LSTMModel, lambda: torch.randn(9, 2, 16), "dynamic"),
}


def float_model(name: str) -> Tuple[nn.Module, torch.Tensor]:
    """(float ``name`` model with random weights and batch norm statistics, an example input)."""
    factory, example, _ = MODELS[name]
    model = factory().eval()
    _randomize_batch_norms(model)
    return model, example()


def convert_model(name: str) -> Tuple[nn.Module, torch.Tensor]:
    """(converted ``name`` model with random weights, an example input)."""
    model, example = float_model(name)
    converter = MODELS[name][2]
    if converter == "static":
        return quantize_static(model, example), example
    if converter == "qat":
        return quantize_aware_training(model, example), example
    return quantize_dynamic(model), example
