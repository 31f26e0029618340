"""Whole models: ResNet-18- and MobileNetV2-shaped convnets at 224x224 (static int8),
a BERT-base-sized TransformerEncoder (dynamic int8). qtorch's converted model against
torch.ao's converted model under each native engine, and float32."""
import copy
from typing import List

import torch
from torch import nn
from torch.ao import quantization as ao

import qtorch.quantization as qq
from benchmarks.harness import Case, Contender, native_contenders
from examples.models import BasicBlock, InvertedResidual


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout, written for eager quantization (torch.ao stubs, FloatFunctional adds)."""

    def __init__(self) -> None:
        super().__init__()
        self.quant, self.dequant = ao.QuantStub(), ao.DeQuantStub()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, blocks, channels = [64, 128, 256, 512], [], 64
        for i, width in enumerate(widths):
            blocks += [BasicBlock(channels, width, 1 if i == 0 else 2), BasicBlock(width, width, 1)]
            channels = width
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.quant(x)))))
        x = self.avgpool(self.layers(x))
        return self.dequant(self.fc(torch.flatten(x, 1)))

    def fuse_groups(self) -> List[List[str]]:
        groups = [["conv1", "bn1", "relu"]]
        for i, block in enumerate(self.layers):
            groups += block.fuse_groups(f"layers.{i}")
        return groups


class MobileNetV2(nn.Module):
    """MobileNetV2's layer shapes (expansion, widths, strides), torch.ao stubs; the head
    pools with F.adaptive_avg_pool2d as torchvision's quantizable model does."""

    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]

    def __init__(self) -> None:
        super().__init__()
        self.quant, self.dequant = ao.QuantStub(), ao.DeQuantStub()
        self.stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(32)
        self.stem_relu = nn.ReLU()
        blocks, channels = [], 32
        for expand, width, repeats, stride in self.SETTINGS:
            for r in range(repeats):
                blocks.append(InvertedResidual(channels, width, stride if r == 0 else 1, expand))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(channels, 1280, 1, bias=False)
        self.head_bn = nn.BatchNorm2d(1280)
        self.head_relu = nn.ReLU()
        self.classifier = nn.Linear(1280, 1000)
        for block in self.blocks:  # torch.ao's FloatFunctional: both workflows convert it
            block.skip_add = torch.ao.nn.quantized.FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_relu(self.stem_bn(self.stem(self.quant(x))))
        x = self.head_relu(self.head_bn(self.head(self.blocks(x))))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.dequant(self.classifier(x))

    def fuse_groups(self) -> List[List[str]]:
        groups = [["stem", "stem_bn", "stem_relu"], ["head", "head_bn", "head_relu"]]
        for i, block in enumerate(self.blocks):
            groups += block.fuse_groups(f"blocks.{i}")
        return groups


def _calibration_batches(shape) -> List[torch.Tensor]:
    return [torch.randn(shape) for _ in range(2)]


def _qtorch_static(model: nn.Module, batches) -> nn.Module:
    m = qq.fuse_modules(copy.deepcopy(model).eval(), model.fuse_groups())
    m.qconfig = qq.get_default_qconfig()
    qq.prepare(m, inplace=True)
    with torch.inference_mode():
        for b in batches:
            m(b)
    return qq.convert(m, inplace=True)


def _native_static(model: nn.Module, batches) -> nn.Module:
    """torch.ao's converted model for the current native engine."""
    m = ao.fuse_modules(copy.deepcopy(model).eval(), model.fuse_groups())
    m.qconfig = ao.get_default_qconfig(torch.backends.quantized.engine)
    ao.prepare(m, inplace=True)
    with torch.inference_mode():
        for b in batches:
            m(b)
    return ao.convert(m, inplace=True)


def _convnet_cases(name: str, model: nn.Module, batch: int, quick: bool, script: bool = False) -> Case:
    x = torch.randn(batch, 3, 224, 224)
    batches = _calibration_batches(x.shape)
    ours = _qtorch_static(model, batches)

    channels_last = x.contiguous(memory_format=torch.channels_last)

    def native():  # built under each engine in turn; channels_last input is native's fast path
        converted = _native_static(model, batches)
        return lambda: converted(channels_last)

    natives = native_contenders(native)
    # script: qtorch's model under TorchScript too ("qtorch-script"), what a deployment runs.
    scripted = [Contender("qtorch-script", lambda s=torch.jit.script(ours): s(x))] if script else []
    return Case("models", f"{name} batch {batch} 224x224", [
        Contender("qtorch", lambda: ours(x)),
        *scripted,
        *natives,
        Contender("float32", lambda: model(channels_last)),
    ], quick=quick)


def _transformer_case(quick: bool) -> Case:
    layer = nn.TransformerEncoderLayer(768, 12, 3072, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 12, enable_nested_tensor=False).eval()
    x = torch.randn(1, 128, 768)
    ours = qq.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)

    def native():
        converted = ao.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)

        def run():
            # Without grad (the harness runs in inference_mode) the float encoder's fast-path
            # check reads linear1.weight as a tensor, a method once quantized, and fails; native
            # users must turn the fast path off, as qtorch's encoder classes do.
            torch.backends.mha.set_fastpath_enabled(False)
            try:
                return converted(x)
            finally:
                torch.backends.mha.set_fastpath_enabled(True)
        return run

    natives = native_contenders(native)
    return Case("models", "BERT-base TransformerEncoder seq 128 (dynamic)", [
        Contender("qtorch", lambda: ours(x)),
        *natives,
        Contender("float32", lambda: model(x)),
    ], quick=quick)


def cases(quick: bool) -> List[Case]:
    torch.manual_seed(0)
    resnet, mobilenet = ResNet18().eval(), MobileNetV2().eval()
    out = [_convnet_cases("ResNet-18", resnet, 1, True, script=not quick),
           _convnet_cases("MobileNetV2", mobilenet, 1, True, script=not quick)]
    if not quick:
        out += [_convnet_cases("ResNet-18", resnet, 8, False), _convnet_cases("MobileNetV2", mobilenet, 8, False),
                _transformer_case(False)]
    return out
