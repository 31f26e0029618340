"""Per-row dynamic quantization (quantize_per_row_dynamic): each row of dim 0 gets the classic dynamic
parameters of its own range. Against an independent float64 reference, against torch (each row through
torch.quantize_per_tensor_dynamic for the parameters, torch.quantize_per_channel for the values), and
across every kernel path."""
import pytest
import torch

import qtorch

ops = torch.ops.qtorch
NATIVE_DTYPE = {torch.uint8: "quint8", torch.int8: "qint8"}
RANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127)}
SHAPES = [(1, 1), (1, 300), (300, 1), (17, 1000), (3, 4, 5), (7,), (0, 5), (5, 0)]


def rows_of(x):
    return x.reshape(x.shape[0], x[0].numel() if x.shape[0] else 0)


def random_rows(shape):
    """Rows of different magnitudes and offsets: all-positive, all-negative, mixed, tiny."""
    x = torch.randn(shape)
    if x.numel() == 0:
        return x
    rows = rows_of(x)
    magnitude = torch.exp(torch.randn(rows.shape[0], 1) * 3)
    offset = torch.randn(rows.shape[0], 1) * 2
    return ((rows + offset) * magnitude).reshape(shape)


def native_row_params(row, dtype, reduce_range):
    """torch.quantize_per_tensor_dynamic on one row: its scale (float32, as qtorch keeps it) and zero point."""
    if row.numel() == 0:  # torch cannot take the range of nothing; qtorch's rule: the range [0, 0]
        row = torch.zeros(1)
    nq = torch.quantize_per_tensor_dynamic(row, getattr(torch, NATIVE_DTYPE[dtype]), reduce_range)
    return float(torch.tensor(nq.q_scale(), dtype=torch.float32)), nq.q_zero_point(), nq.int_repr()


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8])
@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_per_row_dynamic_equals_native(isa, native, dtype, reduce_range, shape):
    x = random_rows(shape)
    q, scales, zps = ops.quantize_per_row_dynamic(x, dtype, reduce_range)
    assert q.dtype == dtype and q.shape == x.shape and q.is_contiguous()
    assert scales.dtype == torch.float32 and zps.dtype == torch.int32
    assert scales.shape == zps.shape == (shape[0],)
    for r, row in enumerate(rows_of(x)):
        scale, zp, per_tensor = native_row_params(row, dtype, reduce_range)
        assert (scales[r].item(), zps[r].item()) == (scale, zp), r
        if row.numel():
            # torch's per-tensor path rounds after a fused multiply-add, qtorch's per-row one in two steps.
            assert (rows_of(q)[r].int() - per_tensor.int()).abs().max() <= 1
    if x.numel():
        nq = torch.quantize_per_channel(x, scales.double(), zps.long(), 0, getattr(torch, NATIVE_DTYPE[dtype]))
        assert torch.equal(q, nq.int_repr())
        assert torch.equal(ops.dequantize_per_channel(q, scales, zps, 0), nq.dequantize())


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8])
@pytest.mark.parametrize("shape", [(1, 1), (17, 1000), (64, 3)])
def test_per_row_dynamic_matches_float_reference(isa, dtype, shape):
    """Independent float64 arithmetic: the scale spans the row's range widened to hold 0, and every
    value comes back within half a step."""
    x = random_rows(shape).double()
    q, scales, zps = ops.quantize_per_row_dynamic(x.float(), dtype)
    qmin, qmax = RANGE[dtype]
    lo = rows_of(x).amin(1).clamp(max=0)
    hi = rows_of(x).amax(1).clamp(min=0)
    want_scale = ((hi - lo) / (qmax - qmin)).clamp(min=6.1e-5)
    want_scale[want_scale == 0] = 0.1
    torch.testing.assert_close(scales.double(), want_scale, rtol=1e-6, atol=0)
    s, z = scales.double()[:, None], zps.double()[:, None]
    # The zero point maps the row's (widened) minimum to qmin, rounded; rows whose scale was raised
    # to the smallest one have their range rescaled first.
    unclamped = want_scale > 6.1e-5
    off = (qmin - lo / scales.double() - zps.double()).abs()
    assert (off[unclamped] <= 0.5 + 1e-3).all()
    want_q = (rows_of(x.float()).double() / s).round() + z
    assert ((rows_of(q).double() - want_q.clamp(qmin, qmax)).abs() <= 1).all()
    back = (rows_of(q).double() - z) * s
    assert ((back - rows_of(x)).abs() <= s * (0.5 + 1e-3)).all()


def test_all_paths_identical():
    x = random_rows((33, 1001)) * 100
    x[3] = 0.0
    x[4] = 1e-20
    x[5, :500] = -3e38
    results = {}
    for isa in qtorch.supported_isas():
        with qtorch.kernel_isa_scope(isa):
            results[isa] = [ops.quantize_per_row_dynamic(x, dtype, rr) for dtype in (torch.uint8, torch.int8)
                            for rr in (False, True)]
    for isa, got in results.items():
        for a, b in zip(results["scalar"], got):
            assert all(torch.equal(u, v) for u, v in zip(a, b)), isa


def test_independent_of_thread_count():
    x = random_rows((2048, 256))
    previous = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            outs.append(ops.quantize_per_row_dynamic(x, torch.uint8))
    finally:
        torch.set_num_threads(previous)
    assert all(torch.equal(a, b) for a, b in zip(*outs))


def test_non_contiguous_input(isa):
    x = random_rows((40, 30)).t()
    got = ops.quantize_per_row_dynamic(x, torch.uint8)
    want = ops.quantize_per_row_dynamic(x.contiguous(), torch.uint8)
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_qtensor_wrapper(native):
    x = random_rows((9, 13))
    q = qtorch.quantize_per_row_dynamic(x)
    assert isinstance(q, qtorch.QTensor) and q.dtype == torch.uint8
    assert q.qscheme() == torch.per_channel_affine and q.q_per_channel_axis() == 0
    data, scales, zps = ops.quantize_per_row_dynamic(x, torch.uint8)
    assert torch.equal(q.int_repr(), data)
    assert torch.equal(q.q_per_channel_scales(), scales.double())
    assert torch.equal(q.dequantize(), ops.dequantize_per_channel(data, scales, zps, 0))
    assert qtorch.quantize_per_row_dynamic(x, torch.qint8, reduce_range=True).dtype == torch.int8
    assert qtorch.quantize_per_row_dynamic(x.double()).dtype == torch.uint8


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_rows_raise(isa, bad):
    x = torch.randn(5, 40)
    x[3, 17] = bad
    with pytest.raises(ValueError, match="row 3 holds NaN or infinity"):
        ops.quantize_per_row_dynamic(x, torch.uint8)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ops.quantize_per_row_dynamic(torch.arange(6).reshape(2, 3), torch.uint8), TypeError,
     "input must be a torch.float32"),
    (lambda: ops.quantize_per_row_dynamic(torch.randn(2, 3), torch.int32), TypeError,
     "dtype must be torch.uint8 or torch.int8"),
    (lambda: ops.quantize_per_row_dynamic(torch.tensor(1.0), torch.uint8), ValueError, "at least 1 dimension"),
    (lambda: qtorch.quantize_per_row_dynamic(torch.arange(3)), TypeError, "floating-point"),
    (lambda: qtorch.quantize_per_row_dynamic(torch.randn(3), torch.float16), TypeError, "dtype must be one of"),
])
def test_bad_input_raises_clear_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_fake_kernel_gives_shapes_and_dtypes():
    x = torch.empty(6, 4, 5, device="meta")
    q, scales, zps = ops.quantize_per_row_dynamic(x, torch.int8)
    assert q.device.type == "meta" and q.dtype == torch.int8 and q.shape == x.shape
    assert scales.shape == zps.shape == (6,) and scales.dtype == torch.float32 and zps.dtype == torch.int32
    with pytest.raises(TypeError, match="dtype must be"):
        ops.quantize_per_row_dynamic(x, torch.float32)
