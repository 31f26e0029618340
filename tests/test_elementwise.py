"""Quantized add, mul, scalar add/mul, cat and unary activations (torch.ops.qtorch)."""
import pytest
import torch

from _eltwise_helpers import (dequantize, max_abs_diff, native_qtensor, quantize, random_params, random_u8,
                              same_on_every_isa)
from qtorch._ops import ops

SHAPES = [(1,), (3, 17), (2, 3, 5, 7), (1, 64, 9, 11)]


def _binary_inputs(shape, channels_last):
    cl = channels_last and len(shape) == 4
    return random_u8(shape, cl), random_params(), random_u8(shape, cl), random_params(), random_params()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("relu", [False, True])
def test_add_matches_float_reference_and_native(isa, native, shape, channels_last, relu):
    a, (sa, za), b, (sb, zb), (s, z) = _binary_inputs(shape, channels_last)
    out = (ops.add_relu if relu else ops.add)(a, sa, za, b, sb, zb, s, z)
    ref = dequantize(a, sa, za) + dequantize(b, sb, zb)
    if relu:
        ref = torch.relu(ref)
    assert max_abs_diff(out, quantize(ref, s, z)) <= 1
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last and len(shape) == 4
                             else torch.contiguous_format)
    native_op = torch.ops.quantized.add_relu if relu else torch.ops.quantized.add
    expected = native_op(native_qtensor(a, sa, za), native_qtensor(b, sb, zb), s, z).int_repr()
    assert max_abs_diff(out, expected) <= 1


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
def test_mul_matches_float_reference_and_native(isa, native, shape, relu):
    a, (sa, za), b, (sb, zb), _ = _binary_inputs(shape, False)
    s, z = float(torch.empty(()).uniform_(0.001, 0.02)), int(torch.randint(0, 256, ()))
    out = (ops.mul_relu if relu else ops.mul)(a, sa, za, b, sb, zb, s, z)
    ref = dequantize(a, sa, za) * dequantize(b, sb, zb)
    if relu:
        ref = torch.relu(ref)
    assert max_abs_diff(out, quantize(ref, s, z)) <= 1
    native_op = torch.ops.quantized.mul_relu if relu else torch.ops.quantized.mul
    expected = native_op(native_qtensor(a, sa, za), native_qtensor(b, sb, zb), s, z).int_repr()
    assert max_abs_diff(out, expected) <= 1


def test_binary_ops_identical_on_every_isa():
    a, (sa, za), b, (sb, zb), (s, z) = _binary_inputs((2, 33, 7, 5), True)
    for op in (ops.add, ops.add_relu, ops.mul, ops.mul_relu):
        same_on_every_isa(lambda: op(a, sa, za, b, sb, zb, s, z))


def test_add_operands_in_different_memory_formats():
    a, (sa, za), b, (sb, zb), (s, z) = _binary_inputs((2, 5, 3, 4), False)
    b_cl = b.contiguous(memory_format=torch.channels_last)
    assert torch.equal(ops.add(a, sa, za, b_cl, sb, zb, s, z), ops.add(a, sa, za, b, sb, zb, s, z))
    # A non-dense view works too.
    assert torch.equal(ops.add(a[:, ::2], sa, za, b[:, ::2], sb, zb, s, z), ops.add(a, sa, za, b, sb, zb, s, z)[:, ::2])


@pytest.mark.parametrize("other", [0.37, -1.9, 0.0, 25.0, -25.0])
def test_add_scalar_with_classic_output_params(isa, native, other):
    x, (sx, zx) = random_u8((3, 17, 5)), random_params()
    expected = torch.ops.quantized.add_scalar(native_qtensor(x, sx, zx), other)
    s, z = expected.q_scale(), expected.q_zero_point()
    out = ops.add_scalar(x, sx, zx, other, s, z)
    assert max_abs_diff(out, expected.int_repr()) <= 1
    assert max_abs_diff(out, quantize(dequantize(x, sx, zx) + other, s, z)) <= 1


@pytest.mark.parametrize("other", [0.5, 2.0, -3.0, 0.0])
def test_mul_scalar_with_classic_output_params(isa, native, other):
    x, (sx, zx) = random_u8((3, 17, 5)), random_params()
    expected = torch.ops.quantized.mul_scalar(native_qtensor(x, sx, zx), other)
    s, z = expected.q_scale(), expected.q_zero_point()
    out = ops.mul_scalar(x, sx, zx, other, s, z)
    assert max_abs_diff(out, expected.int_repr()) <= 1
    assert max_abs_diff(out, quantize(dequantize(x, sx, zx) * other, s, z)) <= 1


def test_scalar_ops_with_any_output_params(isa):
    x, (sx, zx), (s, z) = random_u8((5, 31)), random_params(), random_params()
    assert max_abs_diff(ops.add_scalar(x, sx, zx, 0.3, s, z), quantize(dequantize(x, sx, zx) + 0.3, s, z)) <= 1
    assert max_abs_diff(ops.mul_scalar(x, sx, zx, -0.7, s, z), quantize(dequantize(x, sx, zx) * -0.7, s, z)) <= 1


@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cat_equal_params_is_exact(isa, native, dim, channels_last):
    shapes = [[2, 3, 5, 7] for _ in range(3)]
    for i, extra in enumerate([1, 4, 2]):
        shapes[i][dim] = extra
    xs = [random_u8(tuple(s), channels_last) for s in shapes]
    s, z = random_params()
    out = ops.cat(xs, [s] * 3, [z] * 3, dim, s, z)
    assert torch.equal(out, torch.cat(xs, dim))
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    expected = torch.ops.quantized.cat([native_qtensor(x, s, z) for x in xs], dim, s, z).int_repr()
    assert torch.equal(out, expected)


@pytest.mark.parametrize("dim", [0, 1, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cat_requantizes_to_output_params(isa, native, dim, channels_last):
    shapes = [[1, 17, 4, 3], [1, 17, 4, 3]]
    shapes[1][dim] = 5
    xs = [random_u8(tuple(s), channels_last) for s in shapes]
    params = [random_params() for _ in xs]
    s, z = random_params()
    out = ops.cat(xs, [p[0] for p in params], [p[1] for p in params], dim, s, z)
    ref = quantize(torch.cat([dequantize(x, *p) for x, p in zip(xs, params)], dim), s, z)
    assert max_abs_diff(out, ref) <= 1
    expected = torch.ops.quantized.cat([native_qtensor(x, *p) for x, p in zip(xs, params)], dim, s, z).int_repr()
    assert max_abs_diff(out, expected) <= 1


def test_cat_identical_on_every_isa():
    xs = [random_u8((2, 33, 5, 3), True), random_u8((2, 7, 5, 3), True)]
    same_on_every_isa(lambda: ops.cat(xs, [0.02, 0.05], [3, 200], 1, 0.03, 100))


def _float_unary(name, v, slope=0.01, lo=-1.0, hi=1.0):
    fns = {
        "relu": torch.relu, "relu6": lambda t: torch.clamp(t, 0, 6), "hardswish": torch.nn.functional.hardswish,
        "hardsigmoid": torch.nn.functional.hardsigmoid, "sigmoid": torch.sigmoid,
        "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, slope), "hardtanh": lambda t: torch.clamp(t, lo, hi),
    }
    return fns[name](v)


def _run_unary(name, x, sx, zx, s, z, slope=0.01, lo=-1.0, hi=1.0):
    if name == "leaky_relu":
        return ops.leaky_relu(x, sx, zx, slope, s, z)
    if name == "hardtanh":
        return ops.hardtanh(x, sx, zx, lo, hi, s, z)
    return getattr(ops, name)(x, sx, zx, s, z)


UNARY = ["relu", "relu6", "hardtanh", "hardswish", "hardsigmoid", "sigmoid", "leaky_relu"]


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("same_params", [True, False])
def test_unary_matches_float_reference(isa, name, same_params):
    x = random_u8((2, 17, 5, 3), channels_last=True)
    sx, zx = random_params()
    s, z = (sx, zx) if same_params else random_params()
    out = _run_unary(name, x, sx, zx, s, z, slope=0.2, lo=-0.5, hi=2.0)
    ref = quantize(_float_unary(name, dequantize(x, sx, zx), slope=0.2, lo=-0.5, hi=2.0), s, z)
    exact = name in ("relu", "relu6", "hardtanh") and same_params
    assert max_abs_diff(out, ref) <= (0 if exact else 1)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_unary_identical_on_every_isa():
    x = random_u8((3, 1001))
    for name in UNARY:
        for same in (True, False):
            s, z = (0.05, 128) if same else (0.02, 7)
            same_on_every_isa(lambda: _run_unary(name, x, 0.05, 128, s, z))


def test_unary_matches_native(native):
    import torch.ao.nn.quantized.functional as nqF

    x, (sx, zx) = random_u8((2, 8, 5, 7)), random_params()
    qx = native_qtensor(x, sx, zx)
    s, z = random_params()
    assert torch.equal(ops.relu(x, sx, zx, sx, zx), torch.relu(qx).int_repr())
    assert torch.equal(ops.relu6(x, sx, zx, sx, zx), torch.ops.quantized.relu6(qx).int_repr())
    assert torch.equal(ops.hardtanh(x, sx, zx, -0.3, 0.4, sx, zx), nqF.hardtanh(qx, -0.3, 0.4).int_repr())
    assert max_abs_diff(ops.hardswish(x, sx, zx, s, z), nqF.hardswish(qx, s, z).int_repr()) <= 1
    sig = torch.sigmoid(qx)
    assert max_abs_diff(ops.sigmoid(x, sx, zx, sig.q_scale(), sig.q_zero_point()), sig.int_repr()) <= 1
    hs = torch.nn.functional.hardsigmoid(qx)
    assert max_abs_diff(ops.hardsigmoid(x, sx, zx, hs.q_scale(), hs.q_zero_point()), hs.int_repr()) <= 1
    lr = nqF.leaky_relu(qx, 0.1, scale=s, zero_point=z)
    assert max_abs_diff(ops.leaky_relu(x, sx, zx, 0.1, s, z), lr.int_repr()) <= 1


def test_bad_input_is_a_clear_error():
    a, b = random_u8((2, 3)), random_u8((3, 2))
    for lo, hi in ((0.0, float("nan")), (float("nan"), 1.0)):  # NaN bounds: the ISA clamps would disagree
        with pytest.raises(ValueError, match="must not be NaN"):
            ops.hardtanh(torch.zeros(4, dtype=torch.uint8), 0.1, 0, lo, hi, 0.1, 0)
    with pytest.raises(ValueError, match="same shape"):
        ops.add(a, 0.1, 0, b, 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="broadcasting"):
        ops.mul(a, 0.1, 0, random_u8((1, 3)), 0.1, 0, 0.1, 0)
    with pytest.raises(TypeError, match="a must be a Byte"):
        ops.add(a.float(), 0.1, 0, a, 0.1, 0, 0.1, 0)
    with pytest.raises(TypeError, match="b must be a Byte"):
        ops.add(a, 0.1, 0, a.to(torch.int8), 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="a_scale"):
        ops.add(a, 0.0, 0, a, 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="zero_point"):
        ops.add(a, 0.1, 0, a, 0.1, 0, 0.1, 256)
    with pytest.raises(ValueError, match="outside dim"):
        ops.cat([random_u8((2, 3, 4)), random_u8((2, 4, 4))], [0.1, 0.1], [0, 0], 0, 0.1, 0)
    with pytest.raises(ValueError, match="dims"):
        ops.cat([random_u8((2, 3, 4)), random_u8((2, 3))], [0.1, 0.1], [0, 0], 0, 0.1, 0)
    with pytest.raises(TypeError, match=r"tensors\[1\]"):
        ops.cat([random_u8((2, 3)), torch.zeros(2, 3)], [0.1, 0.1], [0, 0], 0, 0.1, 0)
    with pytest.raises(ValueError, match="one entry per tensor"):
        ops.cat([random_u8((2, 3))], [0.1, 0.1], [0], 0, 0.1, 0)
    with pytest.raises(IndexError, match="dim"):
        ops.cat([random_u8((2, 3))], [0.1], [0], 2, 0.1, 0)
    with pytest.raises(TypeError, match="input"):
        ops.relu(torch.zeros(3), 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="min_val"):
        ops.hardtanh(a, 0.1, 0, 1.0, -1.0, 0.1, 0)


def test_meta_shapes():
    a = torch.empty((2, 3, 4, 5), dtype=torch.uint8, device="meta")
    assert ops.add(a, 0.1, 0, a, 0.1, 0, 0.1, 0).shape == a.shape
    assert ops.cat([a, a], [0.1, 0.1], [0, 0], 1, 0.1, 0).shape == (2, 6, 4, 5)
    assert ops.hardswish(a, 0.1, 0, 0.1, 0).shape == a.shape
