"""fuse_modules: eval fusion folds batch norm (same outputs as the unfused float model),
QAT fusion keeps it; bad names and unsupported patterns raise clearly."""
import pytest
import torch
from torch import nn

import qtorch.nn.intrinsic as nni
import qtorch.nn.intrinsic.qat as nniqat
import qtorch.quantization as qq


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 5, 1)
        self.relu3 = nn.ReLU()
        self.bn4 = nn.BatchNorm2d(5)
        self.relu4 = nn.ReLU()
        self.fc1 = nn.Linear(5 * 5 * 5, 17)
        self.bn5 = nn.BatchNorm1d(17)
        self.fc2 = nn.Linear(17, 3)
        self.relu6 = nn.ReLU()

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        x = self.relu3(self.conv3(x))
        x = self.relu4(self.bn4(x))
        x = self.bn5(self.fc1(x.flatten(1)))
        return self.relu6(self.fc2(x))


GROUPS = [["conv1", "bn1", "relu1"], ["conv2", "bn2"], ["conv3", "relu3"], ["bn4", "relu4"], ["fc1", "bn5"], ["fc2", "relu6"]]


def _trained_statistics(model):
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 7, 7) * 2 + 0.5)
    return model.eval()


def test_eval_fusion_folds_batch_norm_and_matches_float():
    model = _trained_statistics(Net())
    fused = qq.fuse_modules(model, GROUPS)
    assert fused is not model
    assert type(fused.conv1) is nni.ConvReLU2d and type(fused.conv1[0]) is nn.Conv2d
    assert type(fused.conv2) is nn.Conv2d and fused.conv2.bias is not None
    assert type(fused.conv3) is nni.ConvReLU2d
    assert type(fused.bn4) is nni.BNReLU2d
    assert type(fused.fc1) is nn.Linear
    assert type(fused.fc2) is nni.LinearReLU
    for name in ("bn1", "relu1", "bn2", "relu3", "relu4", "bn5", "relu6"):
        assert type(getattr(fused, name)) is nn.Identity
    x = torch.randn(5, 3, 7, 7)
    torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)
    assert type(model.bn1) is nn.BatchNorm2d  # not in place


def test_fusion_in_place_and_single_group():
    model = _trained_statistics(Net())
    reference = model(torch.ones(1, 3, 7, 7))
    result = qq.fuse_modules(model, ["conv3", "relu3"], inplace=True)
    assert result is model and type(model.conv3) is nni.ConvReLU2d
    torch.testing.assert_close(model(torch.ones(1, 3, 7, 7)), reference)


def test_qat_fusion_keeps_batch_norm():
    model = Net().train()
    fused = qq.fuse_modules_qat(model, GROUPS)
    assert type(fused.conv1) is nni.ConvBnReLU2d and type(fused.conv1[1]) is nn.BatchNorm2d
    assert type(fused.conv2) is nni.ConvBn2d
    assert type(fused.fc1) is nni.LinearBn1d
    # A model in training mode fuses for QAT by default (the modules' mode decides).
    assert type(qq.fuse_modules(model, GROUPS).conv2) is nni.ConvBn2d
    x = torch.randn(4, 3, 7, 7)
    reference = Net().train()
    reference.load_state_dict(model.state_dict())
    torch.testing.assert_close(fused(x), reference(x), rtol=1e-5, atol=1e-5)  # batch norm still trains


def test_qat_conv_bn_module_matches_float_and_freezes_statistics():
    torch.manual_seed(0)
    float_model = nni.ConvBnReLU2d(nn.Conv2d(3, 6, 3, bias=True), nn.BatchNorm2d(6), nn.ReLU()).train()
    float_model.qconfig = qq.get_default_qat_qconfig()
    qat = nniqat.ConvBnReLU2d.from_float(float_model)
    qat.weight_fake_quant.disable_fake_quant()  # without fake quantization: the float conv-bn-relu
    reference = nni.ConvBnReLU2d(*[m for m in float_model]).train()
    x = torch.randn(4, 3, 9, 9)
    torch.testing.assert_close(qat(x), reference(x), rtol=1e-4, atol=1e-5)
    qat.apply(nniqat.freeze_bn_stats)
    mean = qat.bn.running_mean.clone()
    qat(x * 3)
    assert torch.equal(qat.bn.running_mean, mean)
    qat.train()
    assert not qat.bn.training  # a frozen batch norm stays frozen through model.train()
    qat.apply(nniqat.update_bn_stats)
    qat(x * 3)
    assert not torch.equal(qat.bn.running_mean, mean)
    folded = qat.eval().folded_conv()
    folded.weight_fake_quant.disable_fake_quant()
    torch.testing.assert_close(folded(x), qat(x), rtol=1e-4, atol=1e-5)


def test_fuse_errors_name_the_problem():
    model = Net().eval()
    with pytest.raises(ValueError, match="no submodule 'conv9'"):
        qq.fuse_modules(model, [["conv9", "bn1"]])
    with pytest.raises(ValueError, match=r"cannot fuse modules of types \[ReLU, Conv2d\]"):
        qq.fuse_modules(model, [["relu1", "conv2"]])
    with pytest.raises(ValueError, match="cannot fuse"):
        qq.fuse_modules(model, [["conv1", "fc1"]])
    with pytest.raises(TypeError):
        qq.fuse_modules(model, "conv1")
    with pytest.raises(ValueError, match="training mode or all in eval"):
        model.bn1.train()
        qq.fuse_modules(model, [["conv1", "bn1"]])
    with pytest.raises(TypeError, match="ConvReLU2d takes"):
        nni.ConvReLU2d(nn.Linear(2, 2), nn.ReLU())


def test_fusion_moves_hooks():
    model = Net().eval()
    seen = []
    model.relu1.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    fused = qq.fuse_modules(model, [["conv1", "bn1", "relu1"]])
    fused(torch.randn(1, 3, 7, 7))
    assert seen == [torch.Size([1, 8, 7, 7])]
