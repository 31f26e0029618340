"""End to end on qtorch's own quantized modules: classic eager-style models converted by
qtorch.quantization against native torch.ao on the same weights and data, scikit-learn's
digits for post-training and quantization-aware training, dynamic quantization of a
Transformer encoder."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import qtorch.quantization as qq

tq = pytest.importorskip("torch.ao.quantization")
import torch.ao.nn.quantized as nnq_native  # noqa: E402


def _sqnr(reference, approximation):
    noise = (reference - approximation).pow(2).sum()
    return (10 * torch.log10(reference.pow(2).sum() / noise)).item()


def _randomize_batch_norms(model):
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.skip_add_relu = nnq_native.FloatFunctional()

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.skip_add_relu.add_relu(out, identity)

    def fuse_groups(self, prefix):
        groups = [[f"{prefix}.conv1", f"{prefix}.bn1", f"{prefix}.relu1"], [f"{prefix}.conv2", f"{prefix}.bn2"]]
        if self.downsample is not None:
            groups.append([f"{prefix}.downsample.0", f"{prefix}.downsample.1"])
        return groups


class ResNetStyle(nn.Module):
    """torch.ao eager style: its stubs, FloatFunctional skip adds, a fuse_model method."""

    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.quant(x)))))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.dequant(self.fc(x))

    def fuse_model(self, fuse):
        fuse(self, [["conv1", "bn1", "relu"]] + self.layer1.fuse_groups("layer1") + self.layer2.fuse_groups("layer2"),
             inplace=True)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip_add = nnq_native.FloatFunctional()

    def forward(self, x):
        return self.skip_add.add(x, self.conv(x)) if self.use_residual else self.conv(x)


class MobileNetV2Style(nn.Module):
    """torchvision's quantizable MobileNetV2 pattern: FloatFunctional skip adds, and forward calls
    F.adaptive_avg_pool2d (a float edge in qtorch, a quantized op natively)."""

    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 1, 2), InvertedResidual(16, 24, 2, 3),
                                    InvertedResidual(24, 24, 1, 3))
        self.head = nn.Sequential(nn.Conv2d(24, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        self.classifier = nn.Linear(64, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.head(self.blocks(self.stem(self.quant(x))))
        x = F.adaptive_avg_pool2d(x, 1).reshape(x.shape[0], -1)
        return self.dequant(self.classifier(x))

    def fuse_model(self, fuse):
        groups = [["stem.0", "stem.1", "stem.2"], ["head.0", "head.1", "head.2"]]
        for i in range(len(self.blocks)):
            p = f"blocks.{i}.conv"
            groups += [[f"{p}.0", f"{p}.1", f"{p}.2"], [f"{p}.3", f"{p}.4", f"{p}.5"], [f"{p}.6", f"{p}.7"]]
        fuse(self, groups, inplace=True)


def _native_converted(float_model, batches, backend="x86"):
    model = copy.deepcopy(float_model)
    model.fuse_model(tq.fuse_modules)
    model.qconfig = tq.get_default_qconfig(backend)
    torch.backends.quantized.engine = backend
    tq.prepare(model, inplace=True)
    with torch.no_grad():
        for x in batches:
            model(x)
    return tq.convert(model, inplace=True)


def _qtorch_converted(float_model, batches, fuse, backend="x86"):
    model = copy.deepcopy(float_model)
    model.fuse_model(fuse)
    model.qconfig = tq.get_default_qconfig(backend)  # torch.ao's config object, used as it is
    qq.prepare(model, inplace=True)
    with torch.no_grad():
        for x in batches:
            model(x)
    return qq.convert(model, inplace=True)


@pytest.mark.parametrize("architecture, fuse", [(ResNetStyle, "qtorch"), (MobileNetV2Style, "qtorch"),
                                                (MobileNetV2Style, "torch.ao")])
def test_classic_models_match_native_torch(native, architecture, fuse):
    torch.manual_seed(0)
    float_model = architecture().eval()
    _randomize_batch_norms(float_model)
    batches = [torch.randn(4, 3, 24, 24) for _ in range(8)]
    fuse_fn = qq.fuse_modules if fuse == "qtorch" else tq.fuse_modules
    ours = _qtorch_converted(float_model, batches, fuse_fn)
    theirs = _native_converted(float_model, batches)
    x = torch.randn(6, 3, 24, 24)
    with torch.no_grad():
        reference = float_model(x)
        out = ours(x)
        native_out = theirs(x)
    scale = ours.dequant.input_scale
    assert (out - native_out).abs().max().item() <= 2 * scale * 1.001
    assert _sqnr(reference, out) >= _sqnr(reference, native_out) - 0.5
    assert "QuantizedConv" not in str(ours) and "torch.ao" not in type(ours.quant).__module__
    scripted = torch.jit.script(ours)
    with torch.no_grad():
        assert torch.equal(scripted(x), out)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = qq.QuantStub()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(32 * 4 * 4, 10)
        self.dequant = qq.DeQuantStub()

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(self.quant(x))))
        x = F.max_pool2d(self.relu2(self.conv2(x)), 2)
        return self.dequant(self.fc(x.flatten(1)))

    def fuse_groups(self):
        return [["conv1", "bn1", "relu1"], ["conv2", "relu2"]]


def _digits():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(labels), generator=generator)
    images, labels = images[order], labels[order]
    return (images[:1400], labels[:1400]), (images[1400:], labels[1400:])


def _accuracy(model, images, labels):
    with torch.no_grad():
        return (model(images).argmax(1) == labels).float().mean().item()


def _train(model, images, labels, steps, lr=0.05):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        index = torch.randint(0, len(labels), (64,), generator=generator)
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def test_static_ptq_on_digits_keeps_accuracy():
    torch.manual_seed(0)
    (train_x, train_y), (test_x, test_y) = _digits()
    model = _train(SmallCNN().train(), train_x, train_y, steps=300).eval()
    float_accuracy = _accuracy(model, test_x, test_y)
    assert float_accuracy > 0.9
    fused = qq.fuse_modules(model, model.fuse_groups())
    fused.qconfig = qq.get_default_qconfig()
    prepared = qq.prepare(fused)
    with torch.no_grad():
        for i in range(8):
            prepared(train_x[i * 32:(i + 1) * 32])
    converted = qq.convert(prepared)
    assert not converted.conv2.float_output  # max pooling and flatten keep the edge to fc integer
    assert _accuracy(converted, test_x, test_y) >= float_accuracy - 0.01


def test_qat_on_digits_converges_and_converts():
    torch.manual_seed(0)
    (train_x, train_y), (test_x, test_y) = _digits()
    model = SmallCNN().train()
    model = qq.fuse_modules_qat(model, model.fuse_groups())
    model.qconfig = qq.get_default_qat_qconfig()
    prepared = qq.prepare_qat(model)
    assert type(prepared.conv1).__name__ == "ConvBnReLU2d" and hasattr(prepared.conv1, "weight_fake_quant")
    _train(prepared, train_x, train_y, steps=150)
    prepared.apply(qq.disable_observer)
    import qtorch.nn.intrinsic.qat as nniqat

    prepared.apply(nniqat.freeze_bn_stats)
    _train(prepared, train_x, train_y, steps=100, lr=0.01)
    prepared.eval()
    qat_accuracy = _accuracy(prepared, test_x, test_y)
    assert qat_accuracy > 0.9
    converted = qq.convert(prepared)
    assert type(converted.conv1).__module__.startswith("qtorch.nn.intrinsic.quantized")
    assert _accuracy(converted, test_x, test_y) >= qat_accuracy - 0.02


def test_quantize_dynamic_transformer_encoder_within_bound():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, batch_first=True)
    model = nn.Sequential(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.Linear(32, 8)).eval()
    x = torch.randn(3, 7, 32)
    for dtype, bound_db in ((torch.qint8, 25.0), (torch.float16, 50.0)):
        quantized = qq.quantize_dynamic(model, {nn.Linear}, dtype=dtype)
        assert "dynamic" in type(quantized[1]).__module__
        with torch.no_grad():
            reference, out = model(x), quantized(x)
        # Documented bound: SQNR of the encoder output vs float >= 25 dB (int8), 50 dB (float16).
        assert _sqnr(reference, out) >= bound_db, (dtype, _sqnr(reference, out))
        torch.jit.script(quantized)
    with pytest.raises(ValueError, match="dtype"):
        qq.quantize_dynamic(model, dtype=torch.quint8)
