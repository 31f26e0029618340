"""One entry per torch.ops.qtorch op: how to draw valid arguments, and the float reference.

tests/test_properties.py runs every spec with random valid arguments on every kernel path
(each path equals the scalar reference exactly, the scalar result equals the float reference
within 1); tests/test_fuzz.py starts from the same valid arguments and breaks them (the
mutations come from each op's schema). tests/test_fuzz.py fails for an op that has no spec
here, so a new op joins by adding one ``OpSpec`` to ``SPECS``:

    OpSpec("my_op", draw=draw_my_op, check=check_my_op)

``draw(draw_fn) -> Case``: ``draw_fn`` is hypothesis' ``data.draw``; ``Case.args`` are the op's
positional arguments, ``Case.info`` whatever ``check`` needs. ``check(case, out)`` asserts
``out`` (computed on the scalar path) against an independent float reference.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from hypothesis import assume
from hypothesis import strategies as st

from qtorch._ops import ops as bindings

ops = torch.ops.qtorch

QRANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127), torch.int32: (-(2 ** 31), 2 ** 31 - 1)}


@dataclasses.dataclass
class Case:
    args: Tuple[Any, ...]
    info: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class OpSpec:
    op: str
    draw: Callable[[Callable], Case]
    # Asserts the scalar path's output against the float reference; None for ops with no
    # arithmetic (their property is a round trip, checked inside check anyway).
    check: Optional[Callable[[Case, Any], None]] = None
    # Ops that change process state (the ISA switch) are fuzzed but have no property.
    stateful: bool = False


# ---------- drawing helpers ----------

SIDES = st.one_of(st.sampled_from([0, 1, 1, 2, 3, 5, 16, 17]), st.integers(0, 40))
POSITIVE_SIDES = st.one_of(st.sampled_from([1, 1, 2, 3, 4, 5, 16, 17, 33]), st.integers(1, 70))


def generator(draw) -> torch.Generator:
    return torch.Generator().manual_seed(draw(st.integers(0, 2 ** 32 - 1)))


def draw_scale(draw, lo=-12.0, hi=3.0) -> float:
    """Positive scales spread over orders of magnitude (powers of two and in between)."""
    return float(2.0 ** draw(st.floats(lo, hi)))


def draw_zero_point(draw, dtype) -> int:
    lo, hi = QRANGE[dtype] if dtype != torch.int32 else (-1000, 1000)
    return draw(st.one_of(st.sampled_from([lo, hi, (lo + hi + 1) // 2]), st.integers(lo, hi)))


def draw_layout(draw, t: torch.Tensor) -> torch.Tensor:
    """The same logical tensor in another memory layout: contiguous, channels_last, or strided."""
    choices = ["contiguous", "strided"] + (["channels_last"] * 2 if t.dim() == 4 else [])
    layout = draw(st.sampled_from(choices))
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "strided" and t.dim() >= 1:
        # Every other element of a twice-as-long last dimension.
        wide = torch.empty(*t.shape[:-1], t.shape[-1] * 2, dtype=t.dtype)
        wide[..., ::2] = t
        return wide[..., ::2]
    return t


def random_ints(gen, shape, dtype) -> torch.Tensor:
    lo, hi = QRANGE[dtype] if dtype != torch.int32 else (-5000, 5000)
    return torch.randint(lo, hi + 1, tuple(shape), generator=gen, dtype=torch.int64).to(dtype)


def within_one(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    if got.numel():
        diff = (got.double() - want.double()).abs().max().item()
        assert diff <= 1, f"differs from the float reference by {diff}"


def quantize_reference(real: torch.Tensor, scale: float, zero_point: int, dtype) -> torch.Tensor:
    lo, hi = QRANGE[dtype]
    return torch.clamp(torch.round(real.double() / scale) + zero_point, lo, hi)


# ---------- quantize family ----------

def draw_quantize_per_tensor(draw) -> Case:
    gen = generator(draw)
    dtype = draw(st.sampled_from([torch.uint8, torch.int8, torch.int32]))
    shape = draw(st.lists(SIDES, min_size=0, max_size=4))
    scale, zp = draw_scale(draw), draw_zero_point(draw, dtype)
    x = torch.randn(shape, generator=gen) * scale * draw(st.sampled_from([1.0, 50.0, 300.0]))
    return Case((draw_layout(draw, x), scale, zp, dtype))


def check_quantize_per_tensor(case, out):
    x, scale, zp, dtype = case.args
    assert out.dtype == dtype
    within_one(out, quantize_reference(x, scale, zp, dtype))


def draw_channel_params(draw, gen, channels, dtype):
    scales = torch.tensor([draw_scale(draw) for _ in range(channels)], dtype=torch.float32)
    zps = torch.tensor([draw_zero_point(draw, dtype) for _ in range(channels)], dtype=torch.int32)
    return scales, zps


def draw_quantize_per_channel(draw) -> Case:
    gen = generator(draw)
    dtype = draw(st.sampled_from([torch.uint8, torch.int8, torch.int32]))
    shape = draw(st.lists(SIDES, min_size=1, max_size=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    assume(shape[axis] <= 64)
    scales, zps = draw_channel_params(draw, gen, shape[axis], dtype)
    x = torch.randn(shape, generator=gen) * 30 * float(scales.mean()) if scales.numel() else torch.randn(shape)
    return Case((draw_layout(draw, x), scales, zps, axis, dtype))


def channel_view(values: torch.Tensor, dim: int, axis: int) -> torch.Tensor:
    shape = [1] * dim
    shape[axis] = -1
    return values.view(shape)


def check_quantize_per_channel(case, out):
    x, scales, zps, axis, dtype = case.args
    lo, hi = QRANGE[dtype]
    s, z = channel_view(scales.double(), x.dim(), axis), channel_view(zps.double(), x.dim(), axis)
    within_one(out, torch.clamp(torch.round(x.double() / s) + z, lo, hi))


def draw_dequantize_per_tensor(draw) -> Case:
    gen = generator(draw)
    dtype = draw(st.sampled_from([torch.uint8, torch.int8, torch.int32]))
    shape = draw(st.lists(SIDES, min_size=0, max_size=4))
    q = random_ints(gen, shape, dtype)
    return Case((draw_layout(draw, q), draw_scale(draw), draw_zero_point(draw, dtype)))


def check_dequantize_per_tensor(case, out):
    q, scale, zp = case.args
    # Exactly the float32 formula: (q - zp) * scale.
    want = (q.double() - zp).float() * torch.tensor(scale, dtype=torch.float32)
    assert out.dtype == torch.float32 and torch.equal(out, want)


def draw_dequantize_per_channel(draw) -> Case:
    gen = generator(draw)
    dtype = draw(st.sampled_from([torch.uint8, torch.int8, torch.int32]))
    shape = draw(st.lists(SIDES, min_size=1, max_size=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    assume(shape[axis] <= 64)
    scales, zps = draw_channel_params(draw, gen, shape[axis], dtype)
    return Case((draw_layout(draw, random_ints(gen, shape, dtype)), scales, zps, axis))


def check_dequantize_per_channel(case, out):
    q, scales, zps, axis = case.args
    s, z = channel_view(scales, q.dim(), axis), channel_view(zps.double(), q.dim(), axis)
    assert torch.equal(out, (q.double() - z).float() * s)


def draw_quantize_per_row_dynamic(draw) -> Case:
    gen = generator(draw)
    dtype = draw(st.sampled_from([torch.uint8, torch.int8]))
    shape = draw(st.lists(SIDES, min_size=1, max_size=3))
    rows = torch.randn(shape, generator=gen).reshape(shape[0], -1) if shape[0] else torch.randn(shape)
    if shape[0]:
        # Each row its own magnitude and offset: all-positive, all-negative, mixed, tiny.
        magnitude = 2.0 ** (torch.randn(shape[0], 1, generator=gen) * 8)
        rows = (rows + torch.randn(shape[0], 1, generator=gen) * 2) * magnitude
    return Case((draw_layout(draw, rows.reshape(shape)), dtype, draw(st.booleans())))


def check_quantize_per_row_dynamic(case, out):
    x, dtype, reduce_range = case.args
    q, scales, zps = out
    lo_q, hi_q = QRANGE[dtype]
    if reduce_range:
        lo_q, hi_q = int(lo_q / 2), int(hi_q / 2)
    rows = x.shape[0]
    assert q.shape == x.shape and q.dtype == dtype and scales.shape == zps.shape == (rows,)
    if rows == 0:
        return
    flat = x.reshape(rows, -1).double()
    lo = flat.amin(1).clamp(max=0) if flat.shape[1] else torch.zeros(rows, dtype=torch.float64)
    hi = flat.amax(1).clamp(min=0) if flat.shape[1] else torch.zeros(rows, dtype=torch.float64)
    want = (hi - lo) / (hi_q - lo_q)
    plain = want.float() >= 6.1e-5  # no tiny-scale rule: the scale spans the row's range
    assert torch.allclose(scales.double()[plain], want[plain], rtol=1e-6, atol=0)
    assert (scales[~plain] == torch.where(want[~plain] == 0, 0.1, 6.1e-5).float()).all()
    assert ((zps >= lo_q) & (zps <= hi_q)).all()
    s, z = scales.double()[:, None], zps.double()[:, None]
    within_one(q.reshape(rows, -1), torch.clamp(torch.round(flat / s) + z, lo_q, hi_q))


def draw_requantize_per_tensor(draw) -> Case:
    gen = generator(draw)
    src, dst = draw(st.sampled_from([torch.uint8, torch.int8])), draw(st.sampled_from([torch.uint8, torch.int8]))
    shape = draw(st.lists(SIDES, min_size=0, max_size=4))
    q = random_ints(gen, shape, src)
    return Case((draw_layout(draw, q), draw_scale(draw), draw_zero_point(draw, src), draw_scale(draw),
                 draw_zero_point(draw, dst), dst))


def check_requantize_per_tensor(case, out):
    q, s_in, z_in, s_out, z_out, dst = case.args
    assert out.dtype == dst
    within_one(out, quantize_reference((q.double() - z_in) * s_in, s_out, z_out, dst))


# ---------- linear family ----------

def draw_weight(draw, gen, n, k, zero_points=True):
    w = random_ints(gen, (n, k), torch.int8)
    per_channel = draw(st.booleans())
    c = n if per_channel else 1
    scales = torch.tensor([draw_scale(draw, -10, -4) for _ in range(c)], dtype=torch.float32)
    if zero_points and draw(st.booleans()):
        zps = torch.tensor([draw(st.integers(-128, 127)) for _ in range(c)], dtype=torch.int32)
    else:
        zps = torch.zeros(c, dtype=torch.int32)
    return w, scales, zps


def dequantized_weight(w, scales, zps):
    shape = (-1,) + (1,) * (w.dim() - 1)
    return (w.double() - zps.double().view(shape)) * scales.double().view(shape)


def output_params_for(draw, ref: torch.Tensor) -> Tuple[float, int]:
    """An output scale that spreads the reference over 0..255 (times a factor, so some saturate)."""
    lo = min(ref.min().item(), 0.0) if ref.numel() else 0.0
    hi = max(ref.max().item(), 0.0) if ref.numel() else 1.0
    scale = max((hi - lo) / 255, 1e-4) * draw(st.sampled_from([1.0, 0.5, 2.0, 0.1]))
    return scale, int(min(255, max(0, round(-lo / scale))))


def draw_linear_problem(draw, float_input=False):
    gen = generator(draw)
    lead = draw(st.lists(SIDES, min_size=1, max_size=3))
    k, n = draw(POSITIVE_SIDES), draw(POSITIVE_SIDES)
    w, ws, wz = draw_weight(draw, gen, n, k)
    bias = torch.randn(n, generator=gen) * draw(st.sampled_from([0.0, 0.1, 1.0])) if draw(st.booleans()) else None
    if float_input:
        x = torch.randn(*lead, k, generator=gen) * draw(st.sampled_from([0.01, 1.0, 100.0]))
        return gen, x, w, ws, wz, bias
    x = random_ints(gen, (*lead, k), torch.uint8)
    return gen, draw_layout(draw, x), w, ws, wz, bias


def draw_static_linear(draw) -> Case:
    _, x, w, ws, wz, bias = draw_linear_problem(draw)
    sx, zx = draw_scale(draw, -8, -2), draw_zero_point(draw, torch.uint8)
    real = F.linear((x.double() - zx) * sx, dequantized_weight(w, ws, wz), None if bias is None else bias.double())
    sy, zy = output_params_for(draw, real)
    float_output = draw(st.booleans())
    packed, sums = ops.linear_prepack(w)
    args = (x, packed, sums, w.shape[1], bias, sx, zx, ws, wz, sy, zy, float_output)
    return Case(args, {"real": real})


def static_linear_checker(relu):
    def check(case, out):
        sy, zy, float_output = case.args[9], case.args[10], case.args[11]
        real = case.info["real"].clamp_min(0) if relu else case.info["real"]
        want = quantize_reference(real, sy, zy, torch.uint8)
        if float_output:
            assert out.dtype == torch.float32
            # The float edge is exactly the dequantized uint8 output.
            q = torch.round(out.double() / sy) + zy
            assert torch.equal((q - zy).float() * torch.tensor(sy), out)
            within_one(q, want)
        else:
            within_one(out, want)
    return check


def draw_dynamic_linear(draw) -> Case:
    _, x, w, ws, wz, bias = draw_linear_problem(draw, float_input=True)
    packed, sums = ops.linear_prepack(w)
    reduce_range, relu = draw(st.booleans()), draw(st.booleans())
    return Case((x, packed, sums, w.shape[1], bias, ws, wz, reduce_range, relu), {"w": w})


def check_dynamic_linear(case, out):
    x, _, _, _, bias, ws, wz, reduce_range, relu = case.args
    if x.numel():
        scale, zp = torch._choose_qparams_per_tensor(x, reduce_range)
    else:
        scale, zp = 1.0, 0
    xq = torch.clamp(torch.round(x.double() / scale) + zp, 0, 255)
    xr = (xq - zp) * scale
    wr = dequantized_weight(case.info["w"], ws, wz)
    want = F.linear(xr, wr, None if bias is None else bias.double())
    if relu:
        want = want.clamp_min(0)
    bound = F.linear(xr.abs(), wr.abs()) + (0 if bias is None else bias.double().abs())
    # Within 1 in the activation's quantization: an element near a rounding tie may land on
    # either side (the kernel rounds fma(x, 1/scale, zp) in float32), each costing scale * |w|.
    one_step = scale * wr.abs().sum(1)
    assert out.dtype == torch.float32 and out.shape == want.shape
    assert ((out.double() - want).abs() <= 1e-5 * bound + one_step + 1e-30).all()


def draw_fp16_linear(draw) -> Case:
    _, x, w, ws, wz, bias = draw_linear_problem(draw, float_input=True)
    wf = torch.randn(w.shape, generator=generator(draw))
    return Case((x, ops.linear_prepack_fp16(wf), w.shape[0], bias, draw(st.booleans())), {"w": wf})


def check_fp16_linear(case, out):
    x, _, _, bias, relu = case.args
    w = case.info["w"].half().double()
    want = F.linear(x.double(), w, None if bias is None else bias.double())
    if relu:
        want = want.clamp_min(0)
    bound = F.linear(x.double().abs(), w.abs()) + (0 if bias is None else bias.double().abs())
    assert ((out.double() - want).abs() <= 1e-5 * bound * max(1, x.shape[-1] ** 0.5) + 1e-30).all()


def draw_linear_prepack(draw) -> Case:
    gen = generator(draw)
    return Case((draw_layout(draw, random_ints(gen, (draw(POSITIVE_SIDES), draw(POSITIVE_SIDES)), torch.int8)),))


def check_linear_prepack(case, out):
    (w,) = case.args
    packed, sums = out
    assert torch.equal(ops.linear_unpack(packed, w.shape[0], w.shape[1]), w)
    assert torch.equal(sums, w.int().sum(1).int())


def draw_linear_unpack(draw) -> Case:
    (w,) = draw_linear_prepack(draw).args
    return Case((ops.linear_prepack(w)[0], w.shape[0], w.shape[1]), {"w": w})


def check_unpack(case, out):
    assert torch.equal(out, case.info["w"])


def draw_linear_prepack_fp16(draw) -> Case:
    gen = generator(draw)
    return Case((draw_layout(draw, torch.randn(draw(POSITIVE_SIDES), draw(POSITIVE_SIDES), generator=gen)),))


def check_linear_prepack_fp16(case, out):
    (w,) = case.args
    assert torch.equal(ops.linear_unpack_fp16(out, w.shape[0]), w.half())


def draw_linear_unpack_fp16(draw) -> Case:
    (w,) = draw_linear_prepack_fp16(draw).args
    return Case((ops.linear_prepack_fp16(w), w.shape[0]), {"w": w.half()})


# ---------- conv2d ----------

def draw_conv_problem(draw):
    gen = generator(draw)
    depthwise = draw(st.booleans())
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    if depthwise:
        channels = draw(st.integers(1, 40))
        groups, in_per_group, out_channels = channels, 1, channels * draw(st.sampled_from([1, 1, 2, 3]))
    else:
        in_per_group = draw(st.integers(1, 20))
        out_channels = groups * draw(st.integers(1, 20))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    padding = [draw(st.integers(0, 2)), draw(st.integers(0, 2))]
    dilation = [draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2]))]
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    assume(dilation[0] * (kh - 1) + 1 <= h + 2 * padding[0] and dilation[1] * (kw - 1) + 1 <= w + 2 * padding[1])
    batch = draw(st.sampled_from([0, 1, 1, 2, 3]))
    x = random_ints(gen, (batch, groups * in_per_group, h, w), torch.uint8)
    weight, ws, wz = draw_weight(draw, gen, out_channels, in_per_group * kh * kw)
    weight = weight.view(out_channels, in_per_group, kh, kw)
    bias = torch.randn(out_channels, generator=gen) if draw(st.booleans()) else None
    return draw_layout(draw, x), weight, ws, wz, bias, stride, padding, dilation, groups


def draw_conv2d(draw) -> Case:
    x, weight, ws, wz, bias, stride, padding, dilation, groups = draw_conv_problem(draw)
    sx, zx = draw_scale(draw, -8, -2), draw_zero_point(draw, torch.uint8)
    real = F.conv2d((x.double() - zx) * sx, dequantized_weight(weight, ws, wz), None if bias is None else bias.double(),
                    stride, padding, dilation, groups)
    sy, zy = output_params_for(draw, real)
    packed, sums = ops.conv2d_prepack(weight, wz, groups)
    args = (x, sx, zx, packed, sums, ws, wz, bias, list(weight.shape[2:]), stride, padding, dilation, groups, sy, zy)
    return Case(args, {"real": real})


def conv2d_checker(relu):
    def check(case, out):
        sy, zy = case.args[13], case.args[14]
        real = case.info["real"].clamp_min(0) if relu else case.info["real"]
        within_one(out, quantize_reference(real, sy, zy, torch.uint8))
    return check


def draw_conv2d_prepack(draw) -> Case:
    _, weight, _, wz, _, _, _, _, groups = draw_conv_problem(draw)
    return Case((weight, wz, groups))


def check_conv2d_prepack(case, out):
    # The packed layout and sums are the conv kernels' own (depthwise sums fold in the zero
    # points); conv2d's spec checks what they compute.
    weight, _, _ = case.args
    _, sums = out
    assert sums.dtype == torch.int32 and sums.shape == (weight.shape[0],)


def draw_conv2d_unpack(draw) -> Case:
    _, weight, _, wz, _, _, _, _, groups = draw_conv_problem(draw)
    packed, _ = ops.conv2d_prepack(weight, wz, groups)
    return Case((packed, list(weight.shape), groups), {"w": weight})


# ---------- elementwise, cat, pooling, resizing ----------

def draw_activation(draw, gen, min_dims=1, max_dims=4, shape=None):
    shape = shape if shape is not None else draw(st.lists(SIDES, min_size=min_dims, max_size=max_dims))
    x = random_ints(gen, shape, torch.uint8)
    return draw_layout(draw, x), draw_scale(draw, -8, -2), draw_zero_point(draw, torch.uint8)


def real(q, scale, zero_point):
    return (q.double() - zero_point) * scale


def draw_binary(draw) -> Case:
    gen = generator(draw)
    a, sa, za = draw_activation(draw, gen)
    b, sb, zb = draw_activation(draw, gen, shape=list(a.shape))
    s, z = draw_scale(draw, -8, -1), draw_zero_point(draw, torch.uint8)
    return Case((a, sa, za, b, sb, zb, s, z))


def binary_checker(fn, relu):
    def check(case, out):
        a, sa, za, b, sb, zb, s, z = case.args
        r = fn(real(a, sa, za), real(b, sb, zb))
        within_one(out, quantize_reference(r.clamp_min(0) if relu else r, s, z, torch.uint8))
    return check


def draw_binary_scalar(draw) -> Case:
    gen = generator(draw)
    x, sx, zx = draw_activation(draw, gen)
    other = draw(st.floats(-10, 10))
    return Case((x, sx, zx, other, draw_scale(draw, -8, -1), draw_zero_point(draw, torch.uint8)))


def scalar_checker(fn):
    def check(case, out):
        x, sx, zx, other, s, z = case.args
        within_one(out, quantize_reference(fn(real(x, sx, zx), other), s, z, torch.uint8))
    return check


def draw_cat(draw) -> Case:
    gen = generator(draw)
    shape = draw(st.lists(SIDES, min_size=1, max_size=4))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    tensors, scales, zps = [], [], []
    for _ in range(draw(st.integers(1, 4))):
        shape[dim] = draw(SIDES)
        x, sx, zx = draw_activation(draw, gen, shape=list(shape))
        tensors.append(x)
        scales.append(sx)
        zps.append(zx)
    if draw(st.booleans()):  # the common case: every input and the output share parameters
        scales, zps = [scales[0]] * len(scales), [zps[0]] * len(zps)
        s, z = scales[0], zps[0]
    else:
        s, z = draw_scale(draw, -8, -2), draw_zero_point(draw, torch.uint8)
    return Case((tensors, scales, zps, dim, s, z))


def check_cat(case, out):
    tensors, scales, zps, dim, s, z = case.args
    r = torch.cat([real(t, st_, zt) for t, st_, zt in zip(tensors, scales, zps)], dim)
    within_one(out, quantize_reference(r, s, z, torch.uint8))


UNARY_FLOAT = {
    "relu": torch.relu, "relu6": lambda t: t.clamp(0, 6), "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid, "sigmoid": torch.sigmoid,
}


def draw_unary(draw) -> Case:
    gen = generator(draw)
    x, sx, zx = draw_activation(draw, gen)
    if draw(st.booleans()):
        return Case((x, sx, zx, sx, zx))
    return Case((x, sx, zx, draw_scale(draw, -8, -2), draw_zero_point(draw, torch.uint8)))


def unary_checker(name):
    def check(case, out):
        x, sx, zx, s, z = case.args
        within_one(out, quantize_reference(UNARY_FLOAT[name](real(x, sx, zx)), s, z, torch.uint8))
    return check


def draw_leaky_relu(draw) -> Case:
    x, sx, zx, s, z = draw_unary(draw).args
    return Case((x, sx, zx, draw(st.floats(0, 1)), s, z))


def check_leaky_relu(case, out):
    x, sx, zx, slope, s, z = case.args
    within_one(out, quantize_reference(F.leaky_relu(real(x, sx, zx), slope), s, z, torch.uint8))


def draw_hardtanh(draw) -> Case:
    x, sx, zx, s, z = draw_unary(draw).args
    lo = draw(st.floats(-3, 1))
    return Case((x, sx, zx, lo, lo + draw(st.floats(0, 4)), s, z))


def check_hardtanh(case, out):
    x, sx, zx, lo, hi, s, z = case.args
    within_one(out, quantize_reference(real(x, sx, zx).clamp(lo, hi), s, z, torch.uint8))


def draw_image(draw, gen, min_side=1):
    batch = draw(st.sampled_from([[], [0], [1], [2]]))
    shape = batch + [draw(st.integers(1, 20)), draw(st.integers(min_side, 12)), draw(st.integers(min_side, 12))]
    return draw_activation(draw, gen, shape=shape)


def draw_pool_window(draw, x):
    h, w = x.shape[-2], x.shape[-1]
    k = [draw(st.integers(1, 4)), draw(st.integers(1, 4))]
    stride = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    padding = [draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2))]
    assume(k[0] <= h + 2 * padding[0] and k[1] <= w + 2 * padding[1])
    return k, stride, padding


def draw_max_pool2d(draw) -> Case:
    x, _, _ = draw_image(draw, generator(draw))
    k, stride, padding = draw_pool_window(draw, x)
    dilation = [1, 1]
    return Case((x, k, stride, padding, dilation, draw(st.booleans())))


def check_max_pool2d(case, out):
    x, k, stride, padding, dilation, ceil_mode = case.args
    want = F.max_pool2d(x.float(), k, stride, padding, dilation, ceil_mode)
    assert torch.equal(out.float(), want)


def draw_avg_pool2d(draw) -> Case:
    x, sx, zx = draw_image(draw, generator(draw))
    k, stride, padding = draw_pool_window(draw, x)
    divisor = draw(st.sampled_from([None, None, 1, 3, 7]))
    s, z = (sx, zx) if draw(st.booleans()) else (draw_scale(draw, -8, -2), draw_zero_point(draw, torch.uint8))
    return Case((x, k, stride, padding, draw(st.booleans()), draw(st.booleans()), divisor, sx, zx, s, z))


def check_avg_pool2d(case, out):
    x, k, stride, padding, ceil_mode, count_include_pad, divisor, sx, zx, s, z = case.args
    r = F.avg_pool2d(real(x, sx, zx), k, stride, padding, ceil_mode, count_include_pad, divisor)
    within_one(out, quantize_reference(r, s, z, torch.uint8))


def draw_adaptive_avg_pool2d(draw) -> Case:
    x, sx, zx = draw_image(draw, generator(draw))
    size = [draw(st.integers(1, 8)), draw(st.integers(1, 8))]
    s, z = (sx, zx) if draw(st.booleans()) else (draw_scale(draw, -8, -2), draw_zero_point(draw, torch.uint8))
    return Case((x, size, sx, zx, s, z))


def check_adaptive_avg_pool2d(case, out):
    x, size, sx, zx, s, z = case.args
    within_one(out, quantize_reference(F.adaptive_avg_pool2d(real(x, sx, zx), size), s, z, torch.uint8))


def draw_resize(draw, bilinear):
    x, _, _ = draw_image(draw, generator(draw))
    size = [draw(st.integers(1, 24)), draw(st.integers(1, 24))]
    args = (x, size, draw(st.booleans())) if bilinear else (x, size)
    return Case(args)


def check_upsample_nearest2d(case, out):
    x, size = case.args
    squeeze = x.dim() == 3
    want = F.interpolate(x.float()[None] if squeeze else x.float(), size=size, mode="nearest")
    assert torch.equal(out.float(), want[0] if squeeze else want)


def check_upsample_bilinear2d(case, out):
    x, size, align_corners = case.args
    squeeze = x.dim() == 3
    want = F.interpolate(x.double()[None] if squeeze else x.double(), size=size, mode="bilinear",
                         align_corners=align_corners)
    within_one(out, torch.clamp(torch.round(want[0] if squeeze else want), 0, 255))


# ---------- recurrent layers (dynamic LSTM / GRU) ----------

def draw_recurrent_weight(draw, gen, n, k, fp16):
    """(op weight list, bias or None, dequantized float64 weight)."""
    bias = torch.randn(n, generator=gen) * 0.5 if draw(st.booleans()) else None
    if fp16:
        w = torch.randn(n, k, generator=gen) * 0.3
        return [ops.linear_prepack_fp16(w)], bias, w.half().double()
    w, ws, wz = draw_weight(draw, gen, n, k, zero_points=False)
    ws = ws * 16  # scales 2^-6 .. 2^0, shrunk below so the recurrence stays well conditioned
    packed, sums = ops.linear_prepack(w)
    return [packed, sums, ws, wz], bias, dequantized_weight(w, ws, wz)


def draw_recurrent_layer(draw, lstm):
    gen = generator(draw)
    batch, hidden = draw(st.integers(1, 5)), draw(st.integers(1, 20))
    proj = draw(st.integers(1, hidden)) if lstm and draw(st.booleans()) else 0
    out = proj or hidden
    gates = 4 if lstm else 3
    fp16 = draw(st.booleans())
    weight_hh, bias, w_hh = draw_recurrent_weight(draw, gen, gates * hidden, out, fp16)
    weight_hr, w_hr = [], None
    if proj:
        weight_hr, _, w_hr = draw_recurrent_weight(draw, gen, proj, hidden, fp16)
    if draw(st.booleans()):
        lengths = sorted(draw(st.lists(st.integers(1, 4), min_size=batch, max_size=batch)), reverse=True)
        batch_sizes = torch.tensor([sum(1 for n in lengths if n > t) for t in range(lengths[0])])
        rows = int(batch_sizes.sum())
    else:
        batch_sizes, rows = None, batch * draw(st.integers(0, 4))
    gates_x = torch.randn(rows, gates * hidden, generator=gen) * 2
    h0 = torch.rand(batch, out, generator=gen) * 2 - 1
    reverse, reduce_range = draw(st.booleans()), draw(st.booleans())
    info = {"w_hh": w_hh, "w_hr": w_hr, "bias": bias, "batch_sizes": batch_sizes, "fp16": fp16}
    if lstm:
        c0 = torch.randn(batch, hidden, generator=gen)
        return Case((gates_x, h0, c0, weight_hh, bias, weight_hr, batch_sizes, reverse, reduce_range), info)
    return Case((gates_x, h0, weight_hh, bias, batch_sizes, reverse, reduce_range), info)


def recurrent_reference(gates_x, h0, c0, info, reverse, reduce_range):
    """The float64 recurrence with the hidden state quantized per step as dynamic Linear does, and a
    bound on how far the kernel may be: per step the quantization of h (within one step of the
    reference's, which may differ: an element near a tie lands either side) costs scale * sum|W|,
    and errors carried in h and c pass through gates whose slopes are at most 1."""
    batch = h0.shape[0]
    sizes = info["batch_sizes"].tolist() if info["batch_sizes"] is not None else [batch] * (gates_x.shape[0] // batch)
    offsets = [sum(sizes[:t]) for t in range(len(sizes))]
    h, c = h0.double().clone(), None if c0 is None else c0.double().clone()
    out = torch.zeros(gates_x.shape[0], h0.shape[1], dtype=torch.float64)
    err_h, err_c = torch.zeros(()), torch.zeros(())

    def project(x, w):
        if info["fp16"]:
            return F.linear(x, w), 1e-5 * F.linear(x.abs(), w.abs()).max()
        scale, zp = torch._choose_qparams_per_tensor(x.float(), reduce_range)
        xr = (torch.clamp(torch.round(x / scale) + zp, 0, 255) - zp) * scale
        return F.linear(xr, w), 2 * scale * w.abs().sum(1).max()

    for t in (reversed(range(len(sizes))) if reverse else range(len(sizes))):
        n, o = sizes[t], offsets[t]
        gh, q_err = project(h[:n], info["w_hh"])
        if info["bias"] is not None:
            gh = gh + info["bias"].double()
        gate_err = q_err + err_h * info["w_hh"].abs().sum(1).max() + 1e-5
        gx = gates_x[o:o + n].double()
        if c is not None:
            i, f, g, og = (gx + gh).chunk(4, 1)
            c_new = torch.sigmoid(f) * c[:n] + torch.sigmoid(i) * torch.tanh(g)
            err_c = err_c + gate_err * (c[:n].abs().max() + 2)
            c[:n] = c_new
            cell_h = torch.sigmoid(og) * torch.tanh(c_new)
            err_h = gate_err + err_c
            if info["w_hr"] is not None:
                cell_h, q_err = project(cell_h, info["w_hr"])
                err_h = q_err + err_h * info["w_hr"].abs().sum(1).max()
        else:
            r, z, nn_ = gx.chunk(3, 1)
            hr, hz, hn = gh.chunk(3, 1)
            r, z = torch.sigmoid(r + hr), torch.sigmoid(z + hz)
            new = torch.tanh(nn_ + r * hn)
            cell_h = (h[:n] - new) * z + new
            err_h = err_h + gate_err * (hn.abs().max() + 3)
        h[:n] = cell_h
        out[o:o + n] = cell_h
    return out, h, c, float(err_h) + 1e-4


def check_recurrent_layer(case, out):
    lstm = len(case.args) == 9
    if lstm:
        gates_x, h0, c0, _, _, _, _, reverse, reduce_range = case.args
    else:
        gates_x, h0, _, _, _, reverse, reduce_range = case.args
        c0 = None
    want_out, want_h, want_c, bound = recurrent_reference(gates_x, h0, c0, case.info, reverse, reduce_range)
    got = list(out)
    assert got[0].shape == want_out.shape and got[1].shape == want_h.shape
    assert all(t.dtype == torch.float32 for t in got)
    assert ((got[0].double() - want_out).abs() <= bound).all()
    assert ((got[1].double() - want_h).abs() <= bound).all()


# ---------- the ISA switch (state, no arithmetic) ----------

def draw_nothing(draw) -> Case:
    return Case(())


def draw_set_kernel_isa(draw) -> Case:
    return Case((draw(st.sampled_from(list(ops.supported_isas()))),))


SPECS: List[OpSpec] = [
    OpSpec("quantize_per_tensor", draw_quantize_per_tensor, check_quantize_per_tensor),
    OpSpec("quantize_per_channel", draw_quantize_per_channel, check_quantize_per_channel),
    OpSpec("dequantize_per_tensor", draw_dequantize_per_tensor, check_dequantize_per_tensor),
    OpSpec("dequantize_per_channel", draw_dequantize_per_channel, check_dequantize_per_channel),
    OpSpec("requantize_per_tensor", draw_requantize_per_tensor, check_requantize_per_tensor),
    OpSpec("quantize_per_row_dynamic", draw_quantize_per_row_dynamic, check_quantize_per_row_dynamic),
    OpSpec("linear_prepack", draw_linear_prepack, check_linear_prepack),
    OpSpec("linear_unpack", draw_linear_unpack, check_unpack),
    OpSpec("linear", draw_static_linear, static_linear_checker(relu=False)),
    OpSpec("linear_relu", draw_static_linear, static_linear_checker(relu=True)),
    OpSpec("linear_dynamic", draw_dynamic_linear, check_dynamic_linear),
    OpSpec("linear_prepack_fp16", draw_linear_prepack_fp16, check_linear_prepack_fp16),
    OpSpec("linear_unpack_fp16", draw_linear_unpack_fp16, check_unpack),
    OpSpec("linear_dynamic_fp16", draw_fp16_linear, check_fp16_linear),
    OpSpec("conv2d_prepack", draw_conv2d_prepack, check_conv2d_prepack),
    OpSpec("conv2d_unpack", draw_conv2d_unpack, check_unpack),
    OpSpec("conv2d", draw_conv2d, conv2d_checker(relu=False)),
    OpSpec("conv2d_relu", draw_conv2d, conv2d_checker(relu=True)),
    OpSpec("add", draw_binary, binary_checker(torch.add, relu=False)),
    OpSpec("add_relu", draw_binary, binary_checker(torch.add, relu=True)),
    OpSpec("mul", draw_binary, binary_checker(torch.mul, relu=False)),
    OpSpec("mul_relu", draw_binary, binary_checker(torch.mul, relu=True)),
    OpSpec("add_scalar", draw_binary_scalar, scalar_checker(torch.add)),
    OpSpec("mul_scalar", draw_binary_scalar, scalar_checker(torch.mul)),
    OpSpec("cat", draw_cat, check_cat),
    *[OpSpec(name, draw_unary, unary_checker(name)) for name in UNARY_FLOAT],
    OpSpec("leaky_relu", draw_leaky_relu, check_leaky_relu),
    OpSpec("hardtanh", draw_hardtanh, check_hardtanh),
    OpSpec("max_pool2d", draw_max_pool2d, check_max_pool2d),
    OpSpec("avg_pool2d", draw_avg_pool2d, check_avg_pool2d),
    OpSpec("adaptive_avg_pool2d", draw_adaptive_avg_pool2d, check_adaptive_avg_pool2d),
    OpSpec("upsample_nearest2d", lambda draw: draw_resize(draw, bilinear=False), check_upsample_nearest2d),
    OpSpec("upsample_bilinear2d", lambda draw: draw_resize(draw, bilinear=True), check_upsample_bilinear2d),
    OpSpec("lstm_layer_dynamic", lambda draw: draw_recurrent_layer(draw, lstm=True), check_recurrent_layer),
    OpSpec("gru_layer_dynamic", lambda draw: draw_recurrent_layer(draw, lstm=False), check_recurrent_layer),
    OpSpec("kernel_isa", draw_nothing, stateful=True),
    OpSpec("supported_isas", draw_nothing, stateful=True),
    OpSpec("set_kernel_isa", draw_set_kernel_isa, stateful=True),
]

SPEC_BY_OP: Dict[str, OpSpec] = {spec.op: spec for spec in SPECS}


def registered_ops() -> List[str]:
    """Every op of the qtorch library, from torch's schema registry."""
    return sorted({s.name.split("::", 1)[1] for s in torch._C._jit_get_all_schemas() if s.name.startswith("qtorch::")})


def schema(op: str):
    return getattr(ops, op).default._schema


def call(op: str, args: Sequence[Any]) -> Any:
    return getattr(ops, op)(*args)


def call_binding(op: str, args: Sequence[Any]) -> Any:
    """The op through its typed binding (qtorch._ops.ops), the way qtorch's Python calls it."""
    return getattr(bindings, op)(*args)
