"""Quantized max/avg/adaptive-avg pooling and nearest/bilinear resize (torch.ops.qtorch)."""
import pytest
import torch
import torch.nn.functional as F

import qtorch
import qtorch.nn.quantized as nnq
import qtorch.nn.quantized.functional as qF
from _eltwise_helpers import (dequantize, max_abs_diff, native_qtensor, quantize, random_params, random_u8,
                              same_on_every_isa)
from qtorch._ops import ops

FORMATS = [False, True]  # channels_last
INT32_MAX = 2 ** 31 - 1


def _memory_format(channels_last):
    return torch.channels_last if channels_last else torch.contiguous_format


# kernel, stride, padding, dilation, ceil_mode
MAX_POOL_CASES = [
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 2), (2, 2), (0, 0), (1, 1), True),
    ((3, 2), (1, 2), (1, 0), (2, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 1), (1, 1), (0, 0), (1, 1), False),
    ((5, 3), (3, 2), (2, 1), (1, 2), True),
]


@pytest.mark.parametrize("case", MAX_POOL_CASES)
@pytest.mark.parametrize("channels_last", FORMATS)
@pytest.mark.parametrize("shape", [(2, 3, 11, 9), (1, 70, 8, 13)])
def test_max_pool2d_is_exact(isa, native, case, channels_last, shape):
    kernel, stride, padding, dilation, ceil_mode = case
    x = random_u8(shape, channels_last)
    out = ops.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    ref = F.max_pool2d(x.float(), kernel, stride, padding, dilation, ceil_mode).to(torch.uint8)
    assert torch.equal(out, ref)
    assert out.is_contiguous(memory_format=_memory_format(channels_last))
    expected = F.max_pool2d(native_qtensor(x, 0.1, 3), kernel, stride, padding, dilation, ceil_mode).int_repr()
    assert torch.equal(out, expected)


def test_max_pool2d_unbatched_and_default_stride():
    x = random_u8((5, 9, 7))
    assert torch.equal(ops.max_pool2d(x, [2], [], [0], [1], False), F.max_pool2d(x.float(), 2).to(torch.uint8))


# kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
AVG_POOL_CASES = [
    ((2, 2), (2, 2), (0, 0), False, True, None),
    ((3, 3), (2, 2), (1, 1), False, True, None),
    ((3, 3), (2, 2), (1, 1), True, False, None),
    ((3, 2), (1, 2), (1, 1), True, True, None),
    ((3, 3), (2, 1), (1, 0), False, True, 5),
]


@pytest.mark.parametrize("case", AVG_POOL_CASES)
@pytest.mark.parametrize("channels_last", FORMATS)
@pytest.mark.parametrize("shape", [(2, 3, 11, 9), (1, 70, 8, 13)])
def test_avg_pool2d_matches_float_reference_and_native(isa, native, case, channels_last, shape):
    kernel, stride, padding, ceil_mode, count_include_pad, divisor = case
    x, (s, z) = random_u8(shape, channels_last), random_params()
    out = ops.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor, s, z, s, z)
    ref = quantize(F.avg_pool2d(dequantize(x, s, z), kernel, stride, padding, ceil_mode, count_include_pad, divisor),
                   s, z)
    assert max_abs_diff(out, ref) <= 1
    assert out.is_contiguous(memory_format=_memory_format(channels_last))
    expected = F.avg_pool2d(native_qtensor(x, s, z), kernel, stride, padding, ceil_mode, count_include_pad,
                            divisor).int_repr()
    assert max_abs_diff(out, expected) <= 1


def test_avg_pool2d_requantizes_to_output_params(isa):
    x, (sx, zx), (s, z) = random_u8((2, 19, 10, 10), True), random_params(), random_params()
    out = ops.avg_pool2d(x, [3, 3], [2, 2], [1, 1], False, True, None, sx, zx, s, z)
    ref = quantize(F.avg_pool2d(dequantize(x, sx, zx), 3, 2, 1), s, z)
    assert max_abs_diff(out, ref) <= 1


@pytest.mark.parametrize("output_size", [(1, 1), (2, 3), (7, 7), (5, 4), (12, 9)])
@pytest.mark.parametrize("channels_last", FORMATS)
def test_adaptive_avg_pool2d_matches_float_reference_and_native(isa, native, output_size, channels_last):
    x, (s, z) = random_u8((2, 37, 7, 9), channels_last), random_params()
    out = ops.adaptive_avg_pool2d(x, list(output_size), s, z, s, z)
    ref = quantize(F.adaptive_avg_pool2d(dequantize(x, s, z), output_size), s, z)
    assert max_abs_diff(out, ref) <= 1
    assert out.is_contiguous(memory_format=_memory_format(channels_last))
    expected = F.adaptive_avg_pool2d(native_qtensor(x, s, z), output_size).int_repr()
    assert max_abs_diff(out, expected) <= 1


RESIZE_CASES = [  # size, scale_factor, mode, align_corners
    ((13, 17), None, "nearest", None),
    (None, 2.0, "nearest", None),
    (None, 1.7, "nearest", None),
    ((4, 3), None, "nearest", None),
    ((13, 17), None, "bilinear", False),
    ((13, 17), None, "bilinear", True),
    (None, 2.0, "bilinear", False),
    (None, (1.5, 0.75), "bilinear", True),
    ((3, 4), None, "bilinear", False),
]


def _run_resize(x, size, scale_factor, mode, align_corners):
    if size is None:
        factors = (scale_factor, scale_factor) if isinstance(scale_factor, float) else scale_factor
        out_size = [int(x.shape[2 + i] * factors[i]) for i in range(2)]
        scales = list(factors)
    else:
        out_size, scales = list(size), [None, None]
    if mode == "nearest":
        return ops.upsample_nearest2d(x, out_size, *scales)
    return ops.upsample_bilinear2d(x, out_size, align_corners, *scales)


@pytest.mark.parametrize("case", RESIZE_CASES)
@pytest.mark.parametrize("channels_last", FORMATS)
def test_resize_matches_float_reference_and_native(isa, native, case, channels_last):
    size, scale_factor, mode, align_corners = case
    x = random_u8((2, 35, 7, 9), channels_last)
    out = _run_resize(x, size, scale_factor, mode, align_corners)
    ref = F.interpolate(x.float(), size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners)
    assert max_abs_diff(out, torch.clamp(torch.round(ref), 0, 255)) <= (0 if mode == "nearest" else 1)
    assert out.is_contiguous(memory_format=_memory_format(channels_last))
    expected = F.interpolate(native_qtensor(x, 0.1, 7), size=size, scale_factor=scale_factor, mode=mode,
                             align_corners=align_corners).int_repr()
    assert max_abs_diff(out, expected) <= (0 if mode == "nearest" else 1)


def test_pooling_identical_on_every_isa():
    x = random_u8((2, 67, 9, 11), True)
    same_on_every_isa(lambda: ops.max_pool2d(x, [3, 3], [2, 2], [1, 1], [1, 1], True))
    same_on_every_isa(lambda: ops.avg_pool2d(x, [3, 3], [2, 2], [1, 1], True, False, None, 0.05, 100, 0.07, 90))
    same_on_every_isa(lambda: ops.adaptive_avg_pool2d(x, [3, 4], 0.05, 100, 0.07, 90))
    same_on_every_isa(lambda: ops.upsample_bilinear2d(x, [17, 13], False))
    same_on_every_isa(lambda: ops.upsample_nearest2d(x, [17, 13]))


def test_bad_input_is_a_clear_error():
    x = random_u8((1, 3, 4, 4))
    with pytest.raises(ValueError, match="does not fit"):
        ops.max_pool2d(x, [5, 5], [1, 1], [0, 0], [1, 1], False)
    with pytest.raises(ValueError, match="does not fit"):
        ops.avg_pool2d(x, [5, 5], [1, 1], [0, 0], False, True, None, 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="half"):
        ops.max_pool2d(x, [2, 2], [1, 1], [2, 2], [1, 1], False)
    with pytest.raises(ValueError, match="stride"):
        ops.max_pool2d(x, [2, 2], [0, 1], [0, 0], [1, 1], False)
    with pytest.raises(ValueError, match="output_size"):
        ops.adaptive_avg_pool2d(x, [0, 1], 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="output_size"):
        ops.upsample_bilinear2d(x, [3, -1], False)
    with pytest.raises(TypeError, match="input"):
        ops.max_pool2d(x.float(), [2, 2], [2, 2], [0, 0], [1, 1], False)
    with pytest.raises(ValueError, match="4-d"):
        ops.max_pool2d(random_u8((4, 4)), [2, 2], [2, 2], [0, 0], [1, 1], False)
    with pytest.raises(ValueError, match="divisor_override"):
        ops.avg_pool2d(x, [2, 2], [2, 2], [0, 0], False, True, 0, 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="input_scale"):
        ops.adaptive_avg_pool2d(x, [1, 1], -1.0, 0, 0.1, 0)


def test_meta_shapes():
    x = torch.empty((2, 3, 8, 9), dtype=torch.uint8, device="meta").contiguous(memory_format=torch.channels_last)
    out = ops.max_pool2d(x, [3, 3], [2, 2], [1, 1], [1, 1], True)
    assert out.shape == F.max_pool2d(torch.empty(2, 3, 8, 9), 3, 2, 1, 1, True).shape
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert ops.adaptive_avg_pool2d(x, [1, 1], 0.1, 0, 0.1, 0).shape == (2, 3, 1, 1)
    assert ops.upsample_bilinear2d(x, [5, 6], False).shape == (2, 3, 5, 6)


# NCHW planes pool through phase buffers (pool_ops.cpp) and channels_last through the
# per-pixel path: both must give the same bits, here on odd and tiny planes, strides 1 to 3,
# padding, dilation and ceil_mode. kernel, stride, padding, dilation:
NCHW_WINDOWS = [
    ((1, 1), (1, 1), (0, 0), (1, 1)),
    ((2, 2), (2, 2), (0, 0), (1, 1)),
    ((3, 3), (2, 2), (1, 1), (1, 1)),
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 2), (3, 3), (1, 1), (1, 1)),
    ((2, 3), (1, 2), (1, 1), (1, 1)),
    ((5, 3), (2, 3), (2, 1), (1, 2)),
    ((2, 3), (3, 1), (1, 1), (2, 2)),
]
NCHW_SHAPES = [(2, 3, 1, 1), (2, 3, 9, 3), (1, 2, 6, 17), (1, 1, 5, 56), (1, 2, 7, 4), (1, 1, 4, 129)]


def _float_pool_or_none(fn, x, *args):
    """The float reference, or None where torch rejects the geometry (qtorch must too)."""
    try:
        return fn(x.float(), *args)
    except RuntimeError:
        return None


@pytest.mark.parametrize("window", NCHW_WINDOWS)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool2d_nchw_planes_match_channels_last(isa, window, ceil_mode):
    kernel, stride, padding, dilation = window
    for shape in NCHW_SHAPES:
        x = random_u8(shape)
        ref = _float_pool_or_none(F.max_pool2d, x, kernel, stride, padding, dilation, ceil_mode)
        if ref is None:
            with pytest.raises(ValueError):
                ops.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
            continue
        out = ops.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        assert out.is_contiguous() and torch.equal(out, ref.to(torch.uint8)), shape
        x_cl = x.contiguous(memory_format=torch.channels_last)
        assert torch.equal(out, ops.max_pool2d(x_cl, kernel, stride, padding, dilation, ceil_mode)), shape


@pytest.mark.parametrize("window", [w for w in NCHW_WINDOWS if w[3] == (1, 1)])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad, divisor", [(True, None), (False, None), (True, 7), (False, 2)])
def test_avg_pool2d_nchw_planes_match_channels_last(isa, window, ceil_mode, count_include_pad, divisor):
    kernel, stride, padding, _ = window
    (sx, zx), (s, z) = random_params(), random_params()
    for shape in NCHW_SHAPES:
        x = random_u8(shape)
        args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor)
        ref = _float_pool_or_none(F.avg_pool2d, dequantize(x, sx, zx), *args)
        if ref is None:
            with pytest.raises(ValueError):
                ops.avg_pool2d(x, *args, sx, zx, s, z)
            continue
        out = ops.avg_pool2d(x, *args, sx, zx, s, z)
        assert out.is_contiguous() and max_abs_diff(out, quantize(ref, s, z)) <= 1, shape
        x_cl = x.contiguous(memory_format=torch.channels_last)
        assert torch.equal(out, ops.avg_pool2d(x_cl, *args, sx, zx, s, z)), shape


def test_pool2d_nchw_huge_stride_keeps_the_row_path(isa):
    # Strides this large would need mostly empty phase buffers: the per-row path runs instead.
    x = random_u8((1, 2, 1001, 3))
    out = ops.max_pool2d(x, [2, 2], [1000, 1000], [1, 1], [1, 1], True)
    assert torch.equal(out, F.max_pool2d(x.float(), 2, 1000, 1, 1, True).to(torch.uint8))
    out = ops.avg_pool2d(x, [2, 2], [1000, 1000], [1, 1], True, False, None, 0.1, 3, 0.1, 3)
    ref = quantize(F.avg_pool2d(dequantize(x, 0.1, 3), 2, 1000, 1, True, False), 0.1, 3)
    assert max_abs_diff(out, ref) <= 1
    # Strides at torch's limit (2^31 - 1; larger ones are rejected) must not overflow the phase sizes.
    x = random_u8((1, 2, 5, 7))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    for stride in ([INT32_MAX, INT32_MAX], [1, INT32_MAX], [INT32_MAX, 2]):
        args = ([2, 2], stride, [1, 1], [1, 1], True)
        assert torch.equal(ops.max_pool2d(x, *args), ops.max_pool2d(x_cl, *args))
        assert torch.equal(ops.max_pool2d(x, *args), F.max_pool2d(x.float(), *args).to(torch.uint8))
        args = ([2, 2], stride, [1, 1], True, False, None, 0.1, 3, 0.1, 3)
        assert torch.equal(ops.avg_pool2d(x, *args), ops.avg_pool2d(x_cl, *args))


@pytest.mark.parametrize("output_size", [(1, 1), (3, 1), (7, 1)])
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 5, 7, 9), (1, 4, 12, 13), (1, 2, 17, 64)])
def test_adaptive_avg_pool2d_nchw_whole_rows_match_channels_last(isa, output_size, shape):
    # Windows of whole rows are contiguous runs of an NCHW plane (avg_pool_runs_u8).
    x, (sx, zx), (s, z) = random_u8(shape), random_params(), random_params()
    out = ops.adaptive_avg_pool2d(x, list(output_size), sx, zx, s, z)
    ref = quantize(F.adaptive_avg_pool2d(dequantize(x, sx, zx), output_size), s, z)
    assert out.is_contiguous() and max_abs_diff(out, ref) <= 1
    x_cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, ops.adaptive_avg_pool2d(x_cl, list(output_size), sx, zx, s, z))


# ---- windows whose byte sum passes int32 ---------------------------------------------------------
# 2903 x 2999 = 8706097 taps, past 2^31 / 255 = 8421504: a window of the whole plane of bytes near 255
# (input zero point 0) has a byte sum past int32, one of bytes near 0 with input zero point 255 a
# bias + sum below it (int32 wraparound would hide anything less: the final value must not fit).
BIG_PLANE = (2903, 2999)


@pytest.fixture(scope="module", params=[(cl, high) for cl in FORMATS for high in (True, False)],
                ids=lambda p: ("channels_last" if p[0] else "nchw") + ("-high" if p[1] else "-low"))
def big_plane(request):
    """An input, its parameters and the float reference of its whole-plane average: drawn once
    per module run and shared by the ISAs (drawing and the reference cost more than the ops)."""
    channels_last, high = request.param
    # Channel 0 all 255 (or all 0), channel 1 random in 240..255 (or 0..15): mean 247.5 (7.5)
    # still overflows. With one channel, channels_last would be the NCHW layout too.
    x = torch.randint(240, 256, (1, 2) + BIG_PLANE, dtype=torch.uint8)
    x[:, 0] = 255
    if not high:
        x = 255 - x
    x = x.contiguous(memory_format=_memory_format(channels_last))
    (sx, zx), (s, z) = (0.05, 0 if high else 255), (0.1, 0 if high else 255)  # averages land mid-range
    # The float reference in float64 (a float32 sum of 8.7M values drifts by whole steps),
    # averaging before dequantizing: the same real number, and a quarter of the time.
    return x, (sx, zx, s, z), quantize((F.adaptive_avg_pool2d(x.double(), 1) - zx) * sx, s, z)


def test_avg_pool_of_a_plane_past_int32_sums_is_exact(isa, big_plane):
    x, (sx, zx, s, z), ref = big_plane  # both ops average the whole plane
    assert max_abs_diff(ops.adaptive_avg_pool2d(x, [1, 1], sx, zx, s, z), ref) <= 1
    assert max_abs_diff(ops.avg_pool2d(x, list(BIG_PLANE), [], [0, 0], False, True, None, sx, zx, s, z), ref) <= 1


# ---- padding limits: exactly torch's ---------------------------------------------------------------
# torch (2.13) allows padding up to kernel_size // 2 per dimension for max and avg pooling; dilation
# does not raise the limit (qtorch used to allow half the dilated kernel). The grids go one past
# half the dilated kernel, on inputs large enough that only the padding can be wrong.
PADDING_KERNELS = [(1, 1), (1, 3), (2, 2), (3, 2), (4, 5)]


def _padding_error(kernel):
    return rf"padding must be at most half the kernel size .* at most {kernel[0] // 2}x{kernel[1] // 2} here"


@pytest.mark.parametrize("kernel", PADDING_KERNELS)
@pytest.mark.parametrize("dilation", [(1, 1), (2, 1), (3, 3)])
def test_max_pool2d_padding_limit_is_torchs(isa, kernel, dilation):
    for channels_last in FORMATS:
        x = random_u8((1, 3, 13, 14), channels_last)
        for ph in range(((kernel[0] - 1) * dilation[0] + 1) // 2 + 2):
            for pw in range(((kernel[1] - 1) * dilation[1] + 1) // 2 + 2):
                args = (list(kernel), [1, 2], [ph, pw], list(dilation), ph % 2 == 1)
                ref = _float_pool_or_none(F.max_pool2d, x, *args)
                if ref is None:
                    with pytest.raises(ValueError, match=_padding_error(kernel)):
                        ops.max_pool2d(x, *args)
                else:
                    assert torch.equal(ops.max_pool2d(x, *args), ref.to(torch.uint8)), args


@pytest.mark.parametrize("kernel", PADDING_KERNELS)
def test_avg_pool2d_padding_limit_is_torchs(isa, kernel):
    (sx, zx), (s, z) = random_params(), random_params()
    for channels_last in FORMATS:
        x = random_u8((1, 3, 13, 14), channels_last)
        for ph in range(kernel[0] // 2 + 2):
            for pw in range(kernel[1] // 2 + 2):
                args = (list(kernel), [2, 1], [ph, pw], pw % 2 == 1, ph % 2 == 0, None)
                ref = _float_pool_or_none(F.avg_pool2d, dequantize(x, sx, zx), *args)
                if ref is None:
                    with pytest.raises(ValueError, match=_padding_error(kernel)):
                        ops.avg_pool2d(x, *args, sx, zx, s, z)
                else:
                    assert max_abs_diff(ops.avg_pool2d(x, *args, sx, zx, s, z), quantize(ref, s, z)) <= 1, args


def test_pool_modules_functionals_and_meta_give_the_padding_error():
    x = random_u8((1, 3, 9, 9))
    q = qtorch.QTensor(x, 0.1, 3)  # AvgPool2d needs input parameters: a QTensor carries them
    # Inside half the dilated kernel (5 // 2 = 2) but past half the kernel (3 // 2 = 1): torch rejects it.
    with pytest.raises(RuntimeError, match="pad"):
        F.max_pool2d(x.float(), 3, 1, 2, 2)
    for call in (lambda: nnq.MaxPool2d(3, 1, 2, 2)(x), lambda: qF.max_pool2d(x, 3, 1, 2, 2),
                 lambda: nnq.MaxPool2d(3, 1, 2, 2)(q), lambda: nnq.AvgPool2d(3, 1, 2)(q),
                 lambda: qF.avg_pool2d(q, 3, 1, 2), lambda: qF.avg_pool2d(x, 3, 1, 2),
                 lambda: ops.max_pool2d(x.to("meta"), [3, 3], [1, 1], [2, 2], [2, 2], False),  # fake (meta) kernels
                 lambda: ops.avg_pool2d(x.to("meta"), [3, 3], [1, 1], [2, 2], False, True, None, 0.1, 3, 0.1, 3)):
        with pytest.raises(ValueError, match=_padding_error((3, 3))):
            call()
    assert torch.equal(nnq.MaxPool2d(3, 1, 1, 2)(x), F.max_pool2d(x.float(), 3, 1, 1, 2).to(torch.uint8))


# ---- kernel, stride, padding and dilation past int32 / at its limit -------------------------------
# torch's pooling parameters are C int: it rejects larger values ("value cannot be converted to type
# int without overflow"), and so must qtorch, the fake (meta) kernels too. Within int32, a kernel of
# 2^31 - 1 is legal: only the taps that reach the padded input may cost anything (the fuzzer found a
# kernel of 2^62 looping over every tap).
HUGE = [2 ** 31, 2 ** 40, 2 ** 62]
WINDOW_ARGS = ["kernel_size", "stride", "padding", "dilation"]


def _max_pool_args(name, value):
    args = {"kernel_size": [2, 2], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1]}
    args[name] = [value, 1]
    return [args[n] for n in WINDOW_ARGS] + [True]


@pytest.mark.parametrize("name", WINDOW_ARGS)
def test_pool_arguments_past_int32_are_rejected_like_torch(name):
    x = random_u8((1, 3, 8, 7))
    for value in HUGE:
        args = _max_pool_args(name, value)
        with pytest.raises(RuntimeError, match="convert"):  # torch's own limit
            F.max_pool2d(x.float(), *args)
        error = rf"{name} must be at most {INT32_MAX} \(torch's pooling parameters are C int\), got \[{value}, 1\]"
        calls = {"max_pool2d": lambda inp: ops.max_pool2d(inp, *args)}
        if name != "dilation":  # avg_pool2d has none
            calls["avg_pool2d"] = lambda inp: ops.avg_pool2d(inp, *args[:3], True, True, None, 0.1, 3, 0.1, 3)
        for op, call in calls.items():
            for inp in (x, x.to("meta"), x[0]):  # batched, fake (meta), unbatched
                with pytest.raises(ValueError, match=f"{op}: {error}"):
                    call(inp)


@pytest.mark.parametrize("channels_last", FORMATS)
def test_max_pool2d_kernel_at_the_int32_limit_is_fast_and_exact(isa, channels_last):
    x = random_u8((2, 3, 8, 7), channels_last)
    # One window over the whole height (torch agrees quickly here: no padding).
    args = ([INT32_MAX, 1], [], [0, 0], [1, 1], True)
    assert torch.equal(ops.max_pool2d(x, *args), F.max_pool2d(x.float(), *args).to(torch.uint8))
    # Padding 2^30 - 1 on both axes (torch accepts it, but loops over every tap for ~15 s): each of
    # the 8 x 7 windows covers the whole plane.
    args = ([INT32_MAX, INT32_MAX], [1, 1], [2 ** 30 - 1, 2 ** 30 - 1], [1, 1], True)
    out = ops.max_pool2d(x, *args)
    assert torch.equal(out, x.amax((2, 3), keepdim=True).expand(2, 3, 8, 7))
    assert out.is_contiguous(memory_format=_memory_format(channels_last))
    # A dilation of 2^31 - 1 fits only a one-tap kernel (padding is at most half the kernel).
    args = ([1, 1], [1, 2], [0, 0], [INT32_MAX, INT32_MAX], True)
    assert torch.equal(ops.max_pool2d(x, *args), F.max_pool2d(x.float(), *args).to(torch.uint8))
    args = ([2, 1], [1, 1], [1, 0], [INT32_MAX, 1], True)
    with pytest.raises(RuntimeError, match="too small"):
        F.max_pool2d(x.float(), *args)
    with pytest.raises(ValueError, match="does not fit"):
        ops.max_pool2d(x, *args)
    # dilation * (kernel - 1) past int32 (torch wraps around in int and answers 11 rows here): the
    # window does not fit.
    with pytest.raises(ValueError, match="does not fit"):
        ops.max_pool2d(x, [3, 1], [1, 1], [1, 0], [INT32_MAX, 1], True)
    # Large but sane: 1000 wide on 7 columns.
    args = ([1, 1000], [1, 1], [0, 500], [1, 1], True)
    assert torch.equal(ops.max_pool2d(x, *args), F.max_pool2d(x.float(), *args).to(torch.uint8))
    args = ([3, 1000], [2, 3], [1, 499], [1, 1], True)
    assert torch.equal(ops.max_pool2d(x, *args), F.max_pool2d(x.float(), *args).to(torch.uint8))


def test_pool_output_size_of_a_meta_input_near_int64_is_exact_or_rejected():
    # in + 2 * padding wrapped around in int64 for a (meta) plane of 2^63 - 1 rows: wrong sizes.
    x = torch.empty((1, 1, 2 ** 63 - 1, 1), dtype=torch.uint8, device="meta")
    assert ops.max_pool2d(x, [3, 1], [2, 1], [1, 0], [1, 1], True).shape == (1, 1, 2 ** 62, 1)
    assert ops.avg_pool2d(x, [3, 1], [2, 1], [1, 0], True, True, None, 0.1, 3, 0.1, 3).shape == (1, 1, 2 ** 62, 1)
    with pytest.raises(ValueError, match="max_pool2d: the output size .* would be past int64"):
        ops.max_pool2d(x, [2, 1], [1, 1], [1, 0], [1, 1], False)  # 2^63 rows


# kernel, stride, padding, ceil_mode: the divisors (window clipped to the padded input, with and
# without the padding, or overridden) must be torch's when the loops skip the taps past it.
HUGE_AVG_WINDOWS = [
    ([INT32_MAX, 3], [1, 1], [2 ** 30 - 1, 1], True),
    ([INT32_MAX, INT32_MAX], [], [0, 0], True),
    ([INT32_MAX, INT32_MAX], [1, 1], [2 ** 30 - 1, 2 ** 30 - 1], False),
    ([3, 1000], [2, 1], [1, 500], True),
    ([1, 1000], [1, 3], [0, 499], True),
]


DIVISOR_RULES = [(True, None), (False, None), (True, 3), (False, 2)]  # count_include_pad, divisor_override


@pytest.fixture(scope="module")
def huge_avg_cases():
    """An input, its parameters and torch's float reference per window and divisor rule: drawn
    once per module run and shared by the ISAs (torch's reference costs ~100x the op here)."""
    (sx, zx), (s, z) = random_params(), random_params()
    x = random_u8((2, 3, 8, 7))
    cases = []
    for window in HUGE_AVG_WINDOWS:
        for rule in DIVISOR_RULES:
            args = (*window, *rule)
            cases.append((args, quantize(F.avg_pool2d(dequantize(x, sx, zx), *args), s, z)))
    return x, (sx, zx, s, z), cases


def test_avg_pool2d_kernel_at_the_int32_limit_keeps_torchs_divisor(isa, huge_avg_cases):
    x, params, cases = huge_avg_cases
    for channels_last in FORMATS:
        x_in = x.contiguous(memory_format=_memory_format(channels_last))
        for args, ref in cases:
            out = ops.avg_pool2d(x_in, *args, *params)
            assert out.shape == ref.shape and max_abs_diff(out, ref) <= 1, (channels_last, args)
            assert out.is_contiguous(memory_format=_memory_format(channels_last))


def _error(call):
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the type is compared
        return type(e), str(e).split("\n")[0]
    return None


# Bad arguments of every pooling and resize op: the fake (meta) kernel must fail like the CPU one
# (it used to accept a zero or negative output_size, an empty plane, bad scales, divisor_override 0).
BAD_CALLS = [
    ("adaptive_avg_pool2d", ([0, 3], 0.1, 3, 0.1, 3)),
    ("adaptive_avg_pool2d", ([-1, 2], 0.1, 3, 0.1, 3)),
    ("adaptive_avg_pool2d", ([2, 2], -1.0, 3, 0.1, 3)),
    ("adaptive_avg_pool2d", ([2, 2], 0.1, 3, 0.1, 256)),
    ("adaptive_avg_pool2d", ([2, 2, 2], 0.1, 3, 0.1, 3)),
    ("upsample_nearest2d", ([0, 3],)),
    ("upsample_nearest2d", ([3, -1],)),
    ("upsample_bilinear2d", ([-1, 2], False)),
    ("upsample_bilinear2d", ([], False)),
    ("avg_pool2d", ([2, 2], [], [0, 0], False, True, 0, 0.1, 3, 0.1, 3)),
    ("avg_pool2d", ([2, 2], [], [0, 0], False, True, None, 0.1, -1, 0.1, 3)),
    ("avg_pool2d", ([2, 2], [], [0, 0], False, True, None, 0.1, 3, float("inf"), 3)),
    ("avg_pool2d", ([2, 2], [], [2, 0], False, True, None, 0.1, 3, 0.1, 3)),
    ("max_pool2d", ([2, 2], [0, 1], [0, 0], [1, 1], False)),
    ("max_pool2d", ([2, 2], [1, 1], [0, 0], [1, 2 ** 31], False)),
]


@pytest.mark.parametrize("op, args", BAD_CALLS)
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (3, 5, 4), (2, 3, 0, 4)])
def test_meta_kernels_reject_what_the_cpu_kernels_reject(op, args, shape):
    x = random_u8(shape)
    fn = getattr(ops, op)
    cpu = _error(lambda: fn(x, *args))
    assert cpu is not None and cpu[0] in (ValueError, TypeError, IndexError), cpu
    assert _error(lambda: fn(x.to("meta"), *args)) == cpu
