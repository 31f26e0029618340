"""Quantized activation, pooling, Quantize/DeQuantize and FloatFunctional/QFunctional modules, the
functional API and torch functions on QTensor."""
import io

import pytest
import torch
import torch.nn.functional as F

import qtorch
import qtorch.nn.quantized as nnq
import qtorch.nn.quantized.functional as qF
from _eltwise_helpers import dequantize, max_abs_diff, native_qtensor, quantize, random_params, random_u8


def _qtensor(shape, channels_last=False):
    (s, z) = random_params()
    return qtorch.QTensor(random_u8(shape, channels_last), s, z)


class Block(torch.nn.Module):
    """Every module of this family, as a converted model would hold them."""

    def __init__(self):
        super().__init__()
        self.quant = nnq.Quantize(0.05, 120)
        self.add = nnq.QFunctional()
        self.cat = nnq.QFunctional()
        self.scalar = nnq.QFunctional()
        self.relu = nnq.ReLU()
        self.relu6 = nnq.ReLU6()
        self.hardswish = nnq.Hardswish(0.04, 60)
        self.max_pool = nnq.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.avg_pool = nnq.AvgPool2d(2)
        self.gap = nnq.AdaptiveAvgPool2d((1, None))
        self.dequant = nnq.DeQuantize()
        self.add.scale, self.add.zero_point = 0.08, 110
        self.add.set_input_qparams(0.05, 120)
        self.cat.scale, self.cat.zero_point = 0.06, 100
        self.cat.set_operand_qparams([0.08, 0.05], [110, 120])
        self.scalar.set_input_qparams(0.06, 100)
        # add_scalar(0.3) shifts the zero point by round(0.3 / 0.06) = 5; mul_scalar(1.0) keeps it.
        for m in (self.relu, self.relu6, self.hardswish, self.max_pool, self.avg_pool):
            m.set_input_qparams(0.06, 95)
        self.gap.set_input_qparams(0.04, 60)
        self.dequant.set_input_qparams(0.04, 60)

    def forward(self, x):
        q = self.quant(x)
        y = self.add.add_relu(q, q)
        y = self.cat.cat([y, q], 1)
        y = self.scalar.mul_scalar(self.scalar.add_scalar(y, 0.3), 1.0)
        y = self.relu6(self.relu(y))
        y = self.avg_pool(self.max_pool(y))
        return self.dequant(self.gap(self.hardswish(y)))


def _float_block(x):
    """Block's float reference, quantizing where the modules do."""
    q = quantize(x, 0.05, 120)
    v = dequantize(q, 0.05, 120)
    y = quantize(torch.relu(v + v), 0.08, 110)
    y = quantize(torch.cat([dequantize(y, 0.08, 110), v], 1), 0.06, 100)
    v = torch.clamp(torch.relu(dequantize(y, 0.06, 100) + 0.3), 0, 6)
    v = F.avg_pool2d(F.max_pool2d(v, 3, 2, 1, ceil_mode=True), 2)
    v = dequantize(quantize(F.hardswish(v), 0.04, 60), 0.04, 60)
    return F.adaptive_avg_pool2d(v, (1, v.shape[-1]))


def test_block_matches_float_reference_and_scripts(isa):
    block = Block()
    x = torch.randn(2, 5, 11, 9)
    out = block(x)
    # Several roundings chained: a few output steps at most.
    assert (out - _float_block(x)).abs().max() <= 4 * 0.04
    scripted = torch.jit.script(block)
    assert torch.equal(scripted(x), out)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    assert torch.equal(torch.jit.load(buffer)(x), out)


def test_block_state_dict_round_trip():
    block = Block()
    fresh = Block()
    for m in fresh.modules():
        if isinstance(m, nnq.QFunctional):
            m.scale, m.zero_point, m.has_input_qparams = 1.0, 0, False
    fresh.load_state_dict(block.state_dict())
    x = torch.randn(1, 5, 8, 8)
    assert torch.equal(fresh(x), block(x))
    assert fresh.cat.scale == 0.06 and fresh.cat.has_input_qparams


def test_modules_on_float_edges_and_float_output():
    relu = nnq.ReLU()
    relu.set_input_qparams(0.1, 128)
    relu.float_output = True
    x = torch.randn(3, 4)
    assert torch.allclose(relu(x), dequantize(quantize(torch.relu(x), 0.1, 128), 0.1, 128))


def test_modules_need_their_parameters():
    with pytest.raises(RuntimeError, match="input quantization parameters"):
        nnq.ReLU()(random_u8((2, 3)))
    with pytest.raises(RuntimeError, match="input quantization parameters"):
        nnq.QFunctional().add(random_u8((2, 3)), random_u8((2, 3)))
    with pytest.raises(RuntimeError, match="forward"):
        nnq.FloatFunctional()(torch.randn(2))
    # Max pooling of integers needs none.
    x = random_u8((1, 2, 4, 4))
    assert torch.equal(nnq.MaxPool2d(2)(x), F.max_pool2d(x.float(), 2).to(torch.uint8))


def test_modules_called_with_qtensors(native):
    q = _qtensor((2, 6, 9, 7), channels_last=True)
    s, z = q.q_scale(), q.q_zero_point()
    for module, reference in ((nnq.ReLU(), torch.relu), (nnq.MaxPool2d(3, 2, 1), lambda v: F.max_pool2d(v, 3, 2, 1)),
                              (nnq.AvgPool2d(2), lambda v: F.avg_pool2d(v, 2)),
                              (nnq.AdaptiveAvgPool2d(3), lambda v: F.adaptive_avg_pool2d(v, 3))):
        out = module(q)
        assert isinstance(out, qtorch.QTensor)
        assert (out.q_scale(), out.q_zero_point()) == (s, z)
        assert max_abs_diff(out.int_repr(), quantize(reference(q.dequantize()), s, z)) <= 1
    hs = nnq.Hardswish(0.03, 50)(q)
    assert (hs.q_scale(), hs.q_zero_point()) == (0.03, 50)
    assert max_abs_diff(hs.int_repr(), quantize(F.hardswish(q.dequantize()), 0.03, 50)) <= 1
    assert torch.equal(nnq.DeQuantize()(q), q.dequantize())


def test_qfunctional_with_qtensors_matches_native(native):
    qa, qb = _qtensor((2, 5, 7)), _qtensor((2, 5, 7))
    f = nnq.QFunctional()
    f.scale, f.zero_point = 0.07, 90
    na, nb = (native_qtensor(q.int_repr(), q.q_scale(), q.q_zero_point()) for q in (qa, qb))
    nf = torch.ao.nn.quantized.QFunctional()
    nf.scale, nf.zero_point = 0.07, 90
    for name in ("add", "add_relu", "mul"):
        out, expected = getattr(f, name)(qa, qb), getattr(nf, name)(na, nb)
        assert (out.q_scale(), out.q_zero_point()) == (expected.q_scale(), expected.q_zero_point())
        assert max_abs_diff(out.int_repr(), expected.int_repr()) <= 1
    out, expected = f.cat([qa, qb], 1), nf.cat([na, nb], 1)
    assert max_abs_diff(out.int_repr(), expected.int_repr()) <= 1
    for other in (0.3, -2.0, 40.0):
        for name in ("add_scalar", "mul_scalar"):
            out, expected = getattr(f, name)(qa, other), getattr(nf, name)(na, other)
            assert out.q_scale() == pytest.approx(expected.q_scale()) and out.q_zero_point() == expected.q_zero_point()
            assert max_abs_diff(out.int_repr(), expected.int_repr()) <= 1
    assert not f.has_input_qparams  # the call's parameters were not kept


def test_float_functional_observes_like_torch_ao():
    f = nnq.FloatFunctional()
    calls = []
    f.activation_post_process = torch.nn.Module()
    f.activation_post_process.forward = lambda t: calls.append(t.shape) or t
    x, y = torch.randn(2, 3), torch.randn(2, 3)
    assert torch.equal(f.add(x, y), x + y)
    assert torch.equal(f.add_relu(x, y), torch.relu(x + y))
    assert torch.equal(f.mul(x, y), x * y)
    assert torch.equal(f.cat([x, y], 1), torch.cat([x, y], 1))
    assert torch.equal(f.add_scalar(x, 2.0), x + 2) and torch.equal(f.mul_scalar(x, 2.0), x * 2)
    assert len(calls) == 4  # the scalar ops are not observed
    torch.jit.script(nnq.FloatFunctional())


def test_qfunctional_from_float():
    f = nnq.FloatFunctional()
    observer = torch.ao.quantization.MinMaxObserver()
    f.activation_post_process = observer
    f.add(torch.randn(4, 4), torch.randn(4, 4))
    q = nnq.QFunctional.from_float(f)
    scale, zero_point = observer.calculate_qparams()
    assert (q.scale, q.zero_point) == (float(scale), int(zero_point))
    with pytest.raises(ValueError, match="observer"):
        nnq.QFunctional.from_float(nnq.FloatFunctional())


def test_torch_functions_on_qtensors(isa, native):
    q = _qtensor((2, 16, 9, 7), channels_last=True)
    nq = native_qtensor(q.int_repr(), q.q_scale(), q.q_zero_point()).contiguous(memory_format=torch.channels_last)
    cases = [
        (lambda t: F.adaptive_avg_pool2d(t, 1), 1),
        (lambda t: F.max_pool2d(t, 2), 0),
        (lambda t: F.avg_pool2d(t, 3, 2, 1), 1),
        (F.relu, 0),
        (lambda t: F.hardtanh(t, -0.5, 0.5), 0),
        (F.hardswish, 1),
        (lambda t: F.leaky_relu(t, 0.1), 1),
        (torch.sigmoid, 1),
        (F.hardsigmoid, 1),
        (lambda t: t.mean((2, 3)), 1),
        (lambda t: t.mean((-1, -2), keepdim=True), 1),
        (lambda t: F.interpolate(t, scale_factor=2, mode="nearest"), 0),
        (lambda t: F.interpolate(t, size=(5, 11), mode="bilinear", align_corners=True), 1),
        (lambda t: F.upsample_bilinear(t, scale_factor=2), 1),
    ]
    for fn, tolerance in cases:
        out = fn(q)
        if fn is F.hardswish:  # native has no quantized F.hardswish; its functional keeps the parameters too
            expected = torch.ao.nn.quantized.functional.hardswish(nq, nq.q_scale(), nq.q_zero_point())
        else:
            expected = fn(nq)
        assert isinstance(out, qtorch.QTensor)
        assert out.q_scale() == pytest.approx(expected.q_scale()) and out.q_zero_point() == expected.q_zero_point()
        assert max_abs_diff(out.int_repr(), expected.int_repr()) <= tolerance
    assert F.max_pool2d(q, 2).is_contiguous(memory_format=torch.channels_last)


def test_torch_cat_on_qtensors_uses_first_params(native):
    qa, qb = _qtensor((2, 3, 4)), _qtensor((2, 5, 4))
    out = torch.cat([qa, qb], 1)
    assert (out.q_scale(), out.q_zero_point()) == (qa.q_scale(), qa.q_zero_point())
    na, nb = (native_qtensor(q.int_repr(), q.q_scale(), q.q_zero_point()) for q in (qa, qb))
    assert max_abs_diff(out.int_repr(), torch.cat([na, nb], 1).int_repr()) <= 1
    with pytest.raises(TypeError, match="tensors\\[1\\]"):
        torch.cat([qa, torch.zeros(2, 5, 4)], 1)


def test_functional_on_plain_uint8():
    x, (s, z) = random_u8((1, 3, 6, 6)), random_params()
    assert torch.equal(qF.relu(x, input_zero_point=z), torch.clamp(x, min=z))
    out = qF.avg_pool2d(x, 2, input_scale=s, input_zero_point=z)
    assert max_abs_diff(out, quantize(F.avg_pool2d(dequantize(x, s, z), 2), s, z)) <= 1
    assert qF.upsample_nearest(x, scale_factor=2).shape == (1, 3, 12, 12)
    assert qF.upsample(x, size=4, mode="bilinear").shape == (1, 3, 4, 4)
    y = x.clone()
    qF.relu(y, inplace=True, input_zero_point=z)
    assert torch.equal(y, torch.clamp(x, min=z))


def test_functional_bad_input():
    x = random_u8((1, 3, 6, 6))
    with pytest.raises(TypeError, match="uint8"):
        qF.relu(x.float())
    with pytest.raises(ValueError, match="exactly one"):
        qF.interpolate(x)
    with pytest.raises(NotImplementedError, match="bicubic"):
        qF.interpolate(x, size=3, mode="bicubic")
    with pytest.raises(ValueError, match="align_corners"):
        qF.interpolate(x, size=3, mode="nearest", align_corners=True)
    with pytest.raises(NotImplementedError, match="return_indices"):
        qF.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError, match="does not fit"):
        qF.max_pool2d(x, 7)
