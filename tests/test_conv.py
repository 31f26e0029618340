"""Quantized conv2d: ops against a float reference and torch's native quantized conv, every ISA
path bit-identical, modules (eager, scripted, from_float), and bad input."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import qtorch
import qtorch.nn.intrinsic.quantized as nniq
import qtorch.nn.quantized as nnq
from qtorch._ops import ops

# (batch, in_channels, height, width, out_channels, kernel, stride, padding, dilation, groups)
CASES = [
    (1, 3, 1, 1, 5, 1, 1, 0, 1, 1),       # 1x1 image
    (1, 3, 1, 1, 5, 3, 1, 1, 1, 1),       # kernel larger than the image, padded
    (1, 4, 2, 3, 6, 5, 1, 2, 1, 1),
    (2, 1, 9, 9, 4, 3, 1, 1, 1, 1),       # one input channel
    (1, 17, 7, 6, 17, 3, 2, 1, 1, 1),     # odd channels, stride 2 on odd sizes
    (1, 1000, 3, 3, 24, 1, 1, 0, 1, 1),   # many input channels, 1x1 as direct GEMM
    (1, 16, 2, 3, 1000, 1, 1, 0, 1, 1),   # many output channels
    (2, 16, 7, 7, 32, 1, 2, 0, 1, 1),     # 1x1 stride 2 (gathered)
    (1, 12, 8, 8, 18, 3, 1, 1, 1, 3),     # grouped
    (1, 32, 9, 9, 32, 3, 1, 1, 1, 32),    # depthwise 3x3
    (1, 33, 11, 11, 33, 3, 2, 1, 1, 33),  # depthwise stride 2, odd sizes and channels
    (1, 20, 9, 9, 20, 5, 2, 2, 1, 20),    # depthwise 5x5 stride 2
    (1, 48, 10, 10, 48, 5, 1, 2, 1, 48),  # depthwise 5x5 stride 1
    (1, 8, 7, 7, 16, 3, 1, 1, 1, 8),      # depthwise, channel multiplier 2
    (1, 3, 6, 6, 9, 3, 1, 0, 1, 3),       # depthwise, multiplier 3, no padding
    (1, 8, 10, 10, 16, 3, 1, 2, 2, 1),    # dilation 2
    (1, 16, 10, 9, 16, 3, 1, 2, 2, 16),   # depthwise dilation 2
    (1, 16, 9, 7, 24, 3, 2, 1, 1, 1),     # stride 2 on odd sizes
    (4, 8, 6, 6, 8, 3, 1, 1, 1, 1),       # batch 4
    (4, 24, 5, 5, 24, 3, 1, 1, 1, 24),    # depthwise batch 4
    (1, 6, 5, 7, 4, 2, 3, 1, 1, 2),       # even kernel, stride 3
]


def case_id(case):
    n, c, h, w, oc, k, s, p, d, g = case
    return f"n{n}c{c}x{h}x{w}-oc{oc}-k{k}s{s}p{p}d{d}g{g}"


def make_weight(oc, c_per_group, k, per_channel, weight_zero_points):
    w = torch.randint(-128, 128, (oc, c_per_group, k, k), dtype=torch.int8)
    n = oc if per_channel else 1
    scales = torch.rand(n) * 0.02 + 0.002
    zps = torch.randint(-20, 21, (n,), dtype=torch.int32) if weight_zero_points else torch.zeros(n, dtype=torch.int32)
    return w, scales, zps


def float_reference(x, sx, zx, w, ws, wz, bias, stride, padding, dilation, groups):
    """F.conv2d on dequantized values (float64, so the reference itself rounds once)."""
    xf = (x.double() - zx) * sx
    shape = (-1, 1, 1, 1)
    wf = (w.double() - wz.double().view(shape)) * ws.double().view(shape)
    return F.conv2d(xf, wf, None if bias is None else bias.double(), stride, padding, dilation, groups)


def output_params(ref):
    lo, hi = min(ref.min().item(), 0.0), max(ref.max().item(), 0.0)
    sy = max((hi - lo) / 255, 1e-4)
    return sy, int(min(255, max(0, round(-lo / sy))))


def quantize_reference(ref, sy, zy, relu):
    q = torch.clamp(torch.round(ref / sy) + zy, 0, 255)
    return torch.clamp(q, min=zy) if relu else q


def run_conv(x, sx, zx, w, ws, wz, bias, stride, padding, dilation, groups, sy, zy, relu=False):
    packed, sums = ops.conv2d_prepack(w, wz, groups)
    op = ops.conv2d_relu if relu else ops.conv2d
    k = list(w.shape[2:])
    return op(x, sx, zx, packed, sums, ws, wz, bias, k, [stride] * 2, [padding] * 2, [dilation] * 2, groups, sy, zy)


def random_problem(case, per_channel, weight_zero_points=False, channels_last=False):
    n, c, h, wd, oc, k, s, p, d, g = case
    x = torch.randint(0, 256, (n, c, h, wd), dtype=torch.uint8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    sx, zx = float(torch.rand(1) * 0.05 + 0.01), int(torch.randint(0, 256, (1,)))
    w, ws, wz = make_weight(oc, c // g, k, per_channel, weight_zero_points)
    bias = torch.randn(oc) * 2
    return x, sx, zx, w, ws, wz, bias, s, p, d, g


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv2d_matches_float_reference_on_every_isa(case):
    per_channel = bool(torch.randint(0, 2, (1,)))
    relu = bool(torch.randint(0, 2, (1,)))
    x, sx, zx, w, ws, wz, bias, s, p, d, g = random_problem(
        case, per_channel, weight_zero_points=bool(torch.randint(0, 2, (1,))),
        channels_last=bool(torch.randint(0, 2, (1,))))
    ref = float_reference(x, sx, zx, w, ws, wz, bias, s, p, d, g)
    sy, zy = output_params(ref)
    want = quantize_reference(ref, sy, zy, relu)
    results = {}
    for isa in qtorch.supported_isas():
        with qtorch.kernel_isa_scope(isa):
            y = run_conv(x, sx, zx, w, ws, wz, bias, s, p, d, g, sy, zy, relu)
        assert y.dtype == torch.uint8 and y.shape == want.shape
        assert y.is_contiguous(memory_format=torch.channels_last)
        assert (y.double() - want).abs().max().item() <= 1, isa
        results[isa] = y
    for isa, y in results.items():
        assert torch.equal(y, results["scalar"]), f"{isa} differs from scalar"


def test_depthwise_equals_grouped_gemm_bits():
    """The depthwise kernels reproduce the GEMM's output pipeline: the same layer run as a
    GEMM (by splitting channels so each group sees two) agrees where it is the same math."""
    x, sx, zx, w, ws, wz, bias, s, p, d, g = random_problem((1, 32, 9, 9, 32, 3, 1, 1, 1, 32), True)
    ref = float_reference(x, sx, zx, w, ws, wz, bias, s, p, d, g)
    sy, zy = output_params(ref)
    depthwise = run_conv(x, sx, zx, w, ws, wz, bias, s, p, d, g, sy, zy)
    # groups=16 with two input channels per group and a weight that is zero on the other channel.
    w2 = torch.zeros(32, 2, 3, 3, dtype=torch.int8)
    for oc in range(32):
        w2[oc, oc % 2] = w[oc, 0]
    grouped = run_conv(x, sx, zx, w2, ws, wz, bias, s, p, d, 16, sy, zy)
    assert torch.equal(depthwise, grouped)


@pytest.mark.parametrize("case", [(2, 16, 7, 7, 24, 3, 1, 1, 1, 1),    # top and bottom rows skip a kernel row
                                  (1, 8, 1, 1, 8, 3, 1, 1, 1, 1),     # one row: only the middle kernel row
                                  (1, 4, 2, 3, 8, 5, 1, 2, 1, 1),     # kernel taller than the image
                                  (3, 8, 10, 9, 16, 3, 1, 2, 2, 1),   # dilation 2
                                  (1, 12, 9, 7, 16, 3, 2, 1, 1, 1),   # stride 2, odd sizes
                                  (1, 6, 6, 6, 12, 3, 1, 1, 1, 2),    # grouped, 9 bytes a kernel row: no skipping
                                  (2, 16, 5, 5, 8, 1, 2, 0, 1, 1),    # 1x1 stride 2: no padding
                                  (3, 4, 9, 13, 20, 3, 2, 1, 1, 1),   # batch 3, stride 2: bands across images
                                  (1, 8, 2, 2, 8, 5, 1, 2, 1, 1),     # no interior column or row
                                  (2, 12, 14, 6, 40, 5, 3, 2, 1, 1),  # stride 3, 5x5
                                  (1, 8, 8, 8, 8, 3, 1, 1, 2, 1)],    # dilation 2: gathered rows
                         ids=case_id)
@pytest.mark.parametrize("threads", [1, 2])
def test_zero_input_zero_point_padding_equals_explicit_zero_rows(case, threads):
    """With input zero point 0, taps in the padding are left out (the GEMM reads the input in
    place, or skips kernel rows of gathered rows): the result must be the bits of the same
    convolution on an input padded with explicit zeros, on every ISA (scalar and avx512vnni read
    in place, avx2 gathers) and thread count."""
    x, sx, _, w, ws, wz, bias, s, p, d, g = random_problem(case, per_channel=True,
                                                           weight_zero_points=bool(torch.randint(0, 2, (1,))))
    ref = float_reference(x, sx, 0, w, ws, wz, bias, s, p, d, g)
    sy, zy = output_params(ref)
    padded = F.pad(x, [p] * 4)  # zeros: the zero point
    previous, results = torch.get_num_threads(), {}
    try:
        torch.set_num_threads(threads)
        for isa in qtorch.supported_isas():
            with qtorch.kernel_isa_scope(isa):
                skipped = run_conv(x, sx, 0, w, ws, wz, bias, s, p, d, g, sy, zy)
                explicit = run_conv(padded, sx, 0, w, ws, wz, bias, s, 0, d, g, sy, zy)
            assert torch.equal(skipped, explicit), isa
            assert (skipped.double() - quantize_reference(ref, sy, zy, False)).abs().max().item() <= 1, isa
            results[isa] = skipped
        for isa, y in results.items():
            assert torch.equal(y, results["scalar"]), f"{isa} differs from scalar"
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", [(2, 24, 13, 11, 40, 3, 1, 1, 1, 1),  # gathered rows
                                  (1, 40, 7, 7, 72, 1, 1, 0, 1, 1),    # direct 1x1, small image: split by columns
                                  (1, 512, 7, 7, 48, 3, 1, 1, 1, 1)],  # 3 tiles on 2 threads: split by columns too
                         ids=case_id)
def test_conv2d_independent_of_thread_count(threads, case):
    x, sx, zx, w, ws, wz, bias, s, p, d, g = random_problem(case, True)
    ref = float_reference(x, sx, zx, w, ws, wz, bias, s, p, d, g)
    sy, zy = output_params(ref)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_conv(x, sx, zx, w, ws, wz, bias, s, p, d, g, sy, zy)
        torch.set_num_threads(threads)
        many = run_conv(x, sx, zx, w, ws, wz, bias, s, p, d, g, sy, zy)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, many)


def native_conv(x, sx, zx, w, ws, wz, bias, stride, padding, dilation, groups, sy, zy, relu):
    oc, cg, kh, kw = w.shape
    cls = torch.ao.nn.intrinsic.quantized.ConvReLU2d if relu else torch.ao.nn.quantized.Conv2d
    mod = cls(cg * groups, oc, (kh, kw), stride, padding, dilation, groups, True)
    if ws.numel() > 1:
        qw = torch._make_per_channel_quantized_tensor(w, ws.double(), wz.long(), 0)
    else:
        qw = torch._make_per_tensor_quantized_tensor(w, float(ws), int(wz))
    mod.set_weight_bias(qw, bias)
    mod.scale, mod.zero_point = sy, zy
    qx = torch._make_per_tensor_quantized_tensor(x, sx, zx).contiguous(memory_format=torch.channels_last)
    return mod(qx).int_repr()


@pytest.mark.parametrize("case", [c for c in CASES if c[1] < 1000 and c[4] < 1000], ids=case_id)
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
def test_conv2d_matches_native(case, per_channel, native):
    relu = bool(torch.randint(0, 2, (1,)))
    x, sx, zx, w, ws, wz, bias, s, p, d, g = random_problem(case, per_channel)
    ref = float_reference(x, sx, zx, w, ws, wz, bias, s, p, d, g)
    sy, zy = output_params(ref)
    ours = run_conv(x, sx, zx, w, ws, wz, bias, s, p, d, g, sy, zy, relu)
    theirs = native_conv(x, sx, zx, w, ws, wz, bias, s, p, d, g, sy, zy, relu)
    assert (ours.int() - theirs.int()).abs().max().item() <= 1


def test_meta_kernel_shapes():
    x = torch.empty(2, 8, 11, 9, dtype=torch.uint8, device="meta")
    w = torch.empty(16, 4, 3, 3, dtype=torch.int8, device="meta")
    packed, sums = ops.conv2d_prepack(w, torch.zeros(1, dtype=torch.int32, device="meta"), 2)
    y = ops.conv2d(x, 0.1, 3, packed, sums, torch.ones(16, device="meta"), torch.zeros(16, dtype=torch.int32,
                   device="meta"), None, [3, 3], [2, 2], [1, 1], [1, 1], 2, 0.2, 4)
    assert y.shape == (2, 16, 6, 5) and y.dtype == torch.uint8 and y.device.type == "meta"
    assert y.is_contiguous(memory_format=torch.channels_last)
    real_packed, real_sums = ops.conv2d_prepack(torch.zeros(16, 4, 3, 3, dtype=torch.int8),
                                                torch.zeros(1, dtype=torch.int32), 2)
    assert packed.shape == real_packed.shape and packed.dtype == real_packed.dtype and sums.shape == real_sums.shape


# --- bad input --------------------------------------------------------------------------------------

def good_args(**override):
    w = torch.randint(-128, 128, (8, 4, 3, 3), dtype=torch.int8)
    packed, sums = ops.conv2d_prepack(w, torch.zeros(1, dtype=torch.int32), 1)
    args = dict(input=torch.randint(0, 256, (1, 4, 6, 6), dtype=torch.uint8), input_scale=0.1,
                input_zero_point=3, packed_weight=packed, weight_sums=sums, weight_scales=torch.ones(8) * 0.01,
                weight_zero_points=torch.zeros(8, dtype=torch.int32), bias=None, kernel_size=[3, 3],
                stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, output_scale=0.2,
                output_zero_point=5)
    args.update(override)
    return args


def test_good_args_run():
    assert ops.conv2d(**good_args()).shape == (1, 8, 6, 6)


@pytest.mark.parametrize("override, error, match", [
    (dict(input=torch.randint(0, 256, (1, 5, 6, 6), dtype=torch.uint8)), ValueError, "packed_weight"),
    (dict(groups=3), ValueError, "divisible by groups"),
    (dict(padding=[-1, 1]), ValueError, "padding"),
    (dict(stride=[0, 1]), ValueError, "stride"),
    (dict(dilation=[1, 0]), ValueError, "dilation"),
    (dict(input=torch.randint(0, 256, (1, 4, 2, 2), dtype=torch.uint8), padding=[0, 0]), ValueError,
     "padded input"),
    (dict(input=torch.randint(0, 256, (1, 4, 3, 3), dtype=torch.uint8), padding=[0, 0], dilation=[2, 2]),
     ValueError, "padded input"),
    (dict(input=torch.randint(-128, 127, (1, 4, 6, 6), dtype=torch.int8)), TypeError, "input"),
    (dict(input=torch.rand(1, 4, 6, 6)), TypeError, "input"),
    (dict(input=torch.randint(0, 256, (4, 6, 6), dtype=torch.uint8)), ValueError, "4-d"),
    # Was a division by zero (SIGFPE) in the NCHW -> NHWC copy.
    (dict(input=torch.zeros(1, 0, 6, 6, dtype=torch.uint8)), ValueError, "at least one channel"),
    (dict(input=torch.zeros(1, 0, 6, 6, dtype=torch.uint8).to(memory_format=torch.channels_last)), ValueError,
     "at least one channel"),
    (dict(input=torch.randint(0, 256, (1, 4, 6, 6, 2), dtype=torch.uint8)), ValueError, "4-d"),
    (dict(input_scale=0.0), ValueError, "input_scale"),
    (dict(input_zero_point=256), ValueError, "input_zero_point"),
    (dict(output_zero_point=-1), ValueError, "output_zero_point"),
    (dict(weight_scales=torch.ones(3)), ValueError, "weight_scales"),
    (dict(bias=torch.ones(7)), ValueError, "bias"),
    (dict(bias=torch.ones(8, dtype=torch.float64)), TypeError, "bias"),
    (dict(kernel_size=[5, 5]), ValueError, "packed_weight"),
])
def test_bad_input_is_a_clear_error(override, error, match):
    with pytest.raises(error, match=match):
        ops.conv2d(**good_args(**override))


def test_infinite_weight_scale_is_a_clear_error():
    scales = torch.ones(8) * 0.01
    scales[3] = math.inf
    with pytest.raises(ValueError, match="positive and finite"):
        ops.conv2d(**good_args(weight_scales=scales))


@pytest.mark.parametrize("groups", [1, 8])
@pytest.mark.parametrize("relu", [False, True])
def test_scales_whose_product_underflows_give_the_zero_point_on_every_isa(groups, relu):
    """input_scale * weight_scale == 0 in float: the requantization multiplier is 0 and bias / ab
    infinite, so every value is NaN before the clamp, which the output pipeline (and the depthwise
    kernels, through their scalar path) define as the output zero point. Was an undefined
    float -> uint8 conversion on the scalar and AVX2 depthwise paths."""
    w = torch.randint(-128, 128, (8, 8 // groups, 3, 3), dtype=torch.int8)
    packed, sums = ops.conv2d_prepack(w, torch.zeros(1, dtype=torch.int32), groups)
    x = torch.randint(0, 256, (2, 8, 9, 7), dtype=torch.uint8)
    conv = ops.conv2d_relu if relu else ops.conv2d
    for bias in (torch.randn(8), None):
        for isa in qtorch.supported_isas():
            with qtorch.kernel_isa_scope(isa):
                y = conv(x, 1e-30, 3, packed, sums, torch.full((8,), 1e-30), torch.zeros(8, dtype=torch.int32),
                         bias, [3, 3], [1, 1], [1, 1], [1, 1], groups, 0.1, 77)
            assert torch.equal(y, torch.full_like(y, 77)), (isa, bias is None)


def test_prepack_bad_input():
    with pytest.raises(TypeError, match="weight"):
        ops.conv2d_prepack(torch.zeros(8, 4, 3, 3), torch.zeros(1, dtype=torch.int32), 1)
    with pytest.raises(ValueError, match="4-d"):
        ops.conv2d_prepack(torch.zeros(8, 4, 3, dtype=torch.int8), torch.zeros(1, dtype=torch.int32), 1)
    with pytest.raises(ValueError, match="divisible by groups"):
        ops.conv2d_prepack(torch.zeros(8, 4, 3, 3, dtype=torch.int8), torch.zeros(1, dtype=torch.int32), 3)
    with pytest.raises(ValueError, match="weight_zero_points"):
        ops.conv2d_prepack(torch.zeros(8, 4, 3, 3, dtype=torch.int8), torch.zeros(3, dtype=torch.int32), 1)


def test_module_construction_errors():
    with pytest.raises(ValueError, match="padding_mode"):
        nnq.Conv2d(3, 8, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="groups"):
        nnq.Conv2d(6, 8, 3, groups=4)
    with pytest.raises(ValueError, match="padding"):
        nnq.Conv2d(3, 8, 3, padding=-1)


# --- modules ----------------------------------------------------------------------------------------

def calibrated(mod, qconfig, x):
    mod.eval()
    mod.qconfig = qconfig
    mod.activation_post_process = qconfig.activation()
    with torch.no_grad():
        mod.activation_post_process(mod(x))
    return mod


def qconfigs():
    from torch.ao.quantization import get_default_qconfig
    return {"per_channel": get_default_qconfig("x86"), "per_tensor": torch.ao.quantization.default_qconfig}


def input_qparams(x):
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    sx = (hi - lo) / 255
    return sx, int(round(-lo / sx))


@pytest.mark.parametrize("scheme", ["per_channel", "per_tensor"])
@pytest.mark.parametrize("groups, kernel, stride", [(1, 3, 1), (2, 1, 1), (8, 3, 2), (8, 5, 1)])
def test_module_from_float_matches_native(scheme, groups, kernel, stride, native):
    x = torch.randn(2, 8, 9, 9)
    float_conv = calibrated(nn.Conv2d(8, 16, kernel, stride, kernel // 2, groups=groups), qconfigs()[scheme], x)
    sx, zx = input_qparams(x)
    ours = nnq.Conv2d.from_float(float_conv)
    ours.set_input_qparams(sx, zx)
    theirs = torch.ao.nn.quantized.Conv2d.from_float(float_conv)
    xq = ops.quantize_per_tensor(x, sx, zx, torch.uint8)
    y = torch.jit.script(ours)(xq)
    y_native = theirs(torch._make_per_tensor_quantized_tensor(xq, sx, zx)).int_repr()
    assert (y.int() - y_native.int()).abs().max().item() <= 1
    assert ours.scale == theirs.scale and ours.zero_point == theirs.zero_point


@pytest.mark.parametrize("fused", ["torch_conv_relu", "torch_conv_bn_relu", "qat_conv_bn_relu"])
def test_conv_relu_from_fused_modules(fused):
    x = torch.randn(1, 6, 8, 8)
    conv, bn, relu = nn.Conv2d(6, 12, 3, 1, 1), nn.BatchNorm2d(12), nn.ReLU()
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    qconfig = qconfigs()["per_channel"]
    if fused == "torch_conv_relu":
        mod = torch.ao.nn.intrinsic.ConvReLU2d(conv, relu)
        expected_float = nn.Sequential(conv, relu).eval()
    elif fused == "torch_conv_bn_relu":
        mod = torch.ao.nn.intrinsic.ConvBnReLU2d(conv, bn, relu)
        expected_float = nn.Sequential(torch.nn.utils.fusion.fuse_conv_bn_eval(conv.eval(), bn.eval()), relu)
    else:
        float_mod = torch.ao.nn.intrinsic.ConvBnReLU2d(conv, bn, relu)
        float_mod.qconfig = torch.ao.quantization.get_default_qat_qconfig("x86")
        mod = torch.ao.nn.intrinsic.qat.ConvBnReLU2d.from_float(float_mod)
        mod.freeze_bn_stats()
        expected_float = nn.Sequential(torch.nn.utils.fusion.fuse_conv_bn_eval(conv.eval(), bn.eval()), relu)
    mod = calibrated(mod, getattr(mod, "qconfig", None) or qconfig, x)
    q = nniq.ConvReLU2d.from_float(mod)
    with pytest.raises(TypeError, match="ConvReLU2d"):
        nnq.Conv2d.from_float(mod)
    sx, zx = input_qparams(x)
    q.set_input_qparams(sx, zx)
    xq = ops.quantize_per_tensor(x, sx, zx, torch.uint8)
    y = torch.jit.script(q)(xq)
    with torch.no_grad():
        ref = expected_float((xq.float() - zx) * sx)
    want = torch.clamp(torch.round(ref / q.scale) + q.zero_point, 0, 255)
    # Weight quantization error on top of output rounding: a few units at most.
    assert (y.float() - want).abs().max().item() <= 3
    assert (y >= q.zero_point).all()


def test_from_float_rejects_other_padding_modes():
    conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
    conv = calibrated(conv, qconfigs()["per_tensor"], torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="padding_mode"):
        nnq.Conv2d.from_float(conv)


def test_module_float_edges_and_state_dict():
    x = torch.randn(1, 4, 6, 6)
    conv = calibrated(nn.Conv2d(4, 8, 3, padding=1, bias=False), qconfigs()["per_channel"], x)
    q = nnq.Conv2d.from_float(conv)
    sx, zx = input_qparams(x)
    q.set_input_qparams(sx, zx)
    scripted = torch.jit.script(q)
    xq = ops.quantize_per_tensor(x, sx, zx, torch.uint8)
    # A float input is quantized with the input parameters.
    assert torch.equal(scripted(x), scripted(xq))
    q.float_output = True
    y = torch.jit.script(q)(xq)
    assert y.dtype == torch.float32
    # Buffers carry everything the kernel needs.
    q.float_output = False
    q2 = nnq.Conv2d(4, 8, 3, padding=1, bias=False)
    q2.load_state_dict(q.state_dict())
    assert (q2.scale, q2.zero_point, q2.input_scale, q2.input_zero_point) == (q.scale, q.zero_point, sx, zx)
    assert q2.weight_per_channel and not q2.has_bias
    assert torch.equal(torch.jit.script(q2)(xq), scripted(xq))


def test_scripted_module_with_no_input_qparams_is_an_error():
    q = torch.jit.script(nnq.Conv2d(3, 4, 3))
    with pytest.raises(Exception, match="input quantization parameters"):
        q(torch.zeros(1, 3, 5, 5, dtype=torch.uint8))


def test_eager_qtensor_call_equals_scripted_and_functional():
    x = torch.randn(2, 6, 9, 9)
    conv = calibrated(nn.Conv2d(6, 12, 3, 2, 1, groups=3), qconfigs()["per_channel"], x)
    q = nnq.Conv2d.from_float(conv)
    sx, zx = input_qparams(x)
    qx = qtorch.quantize_per_tensor(x, sx, zx, torch.uint8)
    eager = q(qx)  # no input parameters held: the QTensor's are used
    assert isinstance(eager, qtorch.QTensor)
    assert (eager.q_scale(), eager.q_zero_point()) == (q.scale, q.zero_point)
    q.set_input_qparams(sx, zx)
    scripted = torch.jit.script(q)(qx.int_repr())
    assert torch.equal(eager.int_repr(), scripted)
    functional = nnq.functional.conv2d(qx, q.weight(), q.bias(), stride=2, padding=1, groups=3, scale=q.scale,
                                       zero_point=q.zero_point)
    assert torch.equal(functional.int_repr(), scripted)
    with pytest.raises(ValueError, match="padding_mode"):
        nnq.functional.conv2d(qx, q.weight(), None, padding_mode="circular")


def test_module_channel_mismatch_names_the_channels():
    q = nnq.Conv2d(3, 4, 3)
    q.set_input_qparams(0.1, 3)
    with pytest.raises(ValueError, match="3 input channels"):
        q(torch.zeros(1, 5, 6, 6, dtype=torch.uint8))
    with pytest.raises(ValueError, match="4-d"):
        q(torch.zeros(3, 6, 6, dtype=torch.uint8))


@pytest.mark.parametrize("in_channels, out_channels, kernel, groups", [
    (6, 10, 3, 1), (6, 9, 1, 3), (8, 8, 3, 8), (5, 10, 5, 5)])  # GEMM, grouped, depthwise, multiplier 2
def test_module_holds_one_weight_copy(in_channels, out_channels, kernel, groups):
    w, scales, zps = make_weight(out_channels, in_channels // groups, kernel, True, True)
    q = nnq.Conv2d(in_channels, out_channels, kernel, padding=1, groups=groups)
    q.set_weight_bias((w, scales, zps), torch.randn(out_channels))
    # The weight comes back from the packed buffer, bit for bit, through weight() and the op.
    assert torch.equal(q.weight().int_repr(), w)
    assert torch.equal(ops.conv2d_unpack(q._packed_weight, list(w.shape), groups), w)
    # No int8 weight beside the packed one: the buffers hold the packed weight (with its padding),
    # one sum, scale and zero point per channel and the bias.
    packed_bytes = q._packed_weight.numel()
    buffer_bytes = sum(b.numel() * b.element_size() for b in q.buffers())
    assert buffer_bytes == packed_bytes + out_channels * (4 + 4 + 4 + 4)
    assert not any(b.dtype == torch.int8 and b.shape == w.shape for b in q.buffers())
    # state_dict, scripting, deepcopy and saved files keep the one copy and the same results.
    import copy
    import io
    assert "_weight_int8" not in q.state_dict()
    q.set_input_qparams(0.05, 7)
    x = torch.randint(0, 256, (1, in_channels, 6, 7), dtype=torch.uint8)
    want = q(x)
    q2 = nnq.Conv2d(in_channels, out_channels, kernel, padding=1, groups=groups)
    q2.load_state_dict(q.state_dict())
    assert torch.equal(q2.weight().int_repr(), w) and torch.equal(q2(x), want)
    assert torch.equal(copy.deepcopy(q)(x), want)
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(q), buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    assert torch.equal(loaded(x), want)
    assert not any(name.endswith("_weight_int8") for name, _ in loaded.named_buffers())
    # A state_dict saved with the unpacked copy (earlier versions) still loads.
    old = dict(q.state_dict(), _weight_int8=w)
    q3 = nnq.Conv2d(in_channels, out_channels, kernel, padding=1, groups=groups)
    q3.load_state_dict(old)
    assert torch.equal(q3(x), want)


def test_unpack_bad_input():
    packed, _ = ops.conv2d_prepack(torch.zeros(4, 2, 3, 3, dtype=torch.int8), torch.zeros(1, dtype=torch.int32), 1)
    with pytest.raises(ValueError, match="weight_shape"):
        ops.conv2d_unpack(packed, [4, 2, 3], 1)
    with pytest.raises(ValueError, match="packed_weight"):
        ops.conv2d_unpack(packed, [4, 2, 5, 5], 1)
    with pytest.raises(ValueError, match="groups"):
        ops.conv2d_unpack(packed, [4, 2, 3, 3], 3)
    with pytest.raises(TypeError, match="packed_weight"):
        ops.conv2d_unpack(packed.to(torch.uint8), [4, 2, 3, 3], 1)
