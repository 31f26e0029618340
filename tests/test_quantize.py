"""quantize / dequantize / requantize ops and qtorch.quantize_per_*: against torch's native
quantization (exact) and across every kernel path."""
import math
import subprocess
import sys

import pytest
import torch

import qtorch

ops = torch.ops.qtorch
NATIVE_DTYPE = {torch.uint8: "quint8", torch.int8: "qint8", torch.int32: "qint32"}
SIZES = [0, 1, 3, 17, 1000003]


def native_dtype(dtype):
    return getattr(torch, NATIVE_DTYPE[dtype])


def random_zero_point(dtype):
    lo, hi = {torch.uint8: (0, 255), torch.int8: (-128, 127), torch.int32: (-1000, 1000)}[dtype]
    return int(torch.randint(lo, hi + 1, ()))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int32])
@pytest.mark.parametrize("numel", SIZES)
def test_quantize_per_tensor_equals_native(isa, native, dtype, numel):
    x = torch.randn(numel) * 5
    scale, zp = float(torch.rand(()) * 0.2 + 0.01), random_zero_point(dtype)
    want = torch.quantize_per_tensor(x, scale, zp, native_dtype(dtype))
    got = ops.quantize_per_tensor(x, scale, zp, dtype)
    assert got.dtype == dtype
    assert torch.equal(got, want.int_repr())
    assert torch.equal(ops.dequantize_per_tensor(got, scale, zp), want.dequantize())


def test_quantize_rounds_half_to_even(isa):
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49, 3.51])
    got = ops.quantize_per_tensor(x, 1.0, 10, torch.uint8)
    assert got.tolist() == [10, 12, 12, 10, 8, 8, 13, 14]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int32])
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1])
@pytest.mark.parametrize("channels_last", [False, True])
def test_quantize_per_channel_equals_native(isa, native, dtype, axis, channels_last):
    x = torch.randn(2, 17, 5, 3) * 3
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    channels = x.shape[axis]
    # qtorch keeps per-channel scales in float32 (as observers produce them); torch stores them as float64.
    scales = (torch.rand(channels) * 0.1 + 0.005).double()
    zps = torch.tensor([random_zero_point(dtype) for _ in range(channels)])
    # Native takes channels_last input only for axis 0 or 1; it gets the contiguous copy.
    want = torch.quantize_per_channel(x.contiguous(), scales, zps, axis % 4, native_dtype(dtype))
    got = ops.quantize_per_channel(x, scales, zps, axis, dtype)
    assert torch.equal(got, want.int_repr())
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
    back = ops.dequantize_per_channel(got, scales, zps, axis)
    assert torch.equal(back, want.dequantize())


def test_per_channel_with_many_rows_and_few_channels(isa, native):
    x = torch.randn(1000, 3)
    scales, zps = torch.tensor([0.1, 0.02, 0.3]), torch.tensor([0, 128, 255])
    want = torch.quantize_per_channel(x, scales.double(), zps, 1, torch.quint8)
    assert torch.equal(ops.quantize_per_channel(x, scales, zps, 1, torch.uint8), want.int_repr())


def test_non_contiguous_input(isa, native):
    x = torch.randn(40, 30)[::2, 1::3]
    want = torch.quantize_per_tensor(x, 0.05, 3, torch.quint8).int_repr()
    assert torch.equal(ops.quantize_per_tensor(x, 0.05, 3, torch.uint8), want)


def test_all_paths_identical():
    x = torch.randn(3, 1001) * 10
    x[0, :5] = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30, -0.0])
    results = {}
    for isa in qtorch.supported_isas():
        with qtorch.kernel_isa_scope(isa):
            results[isa] = [ops.quantize_per_tensor(x, 0.07, 100, torch.uint8),
                            ops.quantize_per_tensor(x, 0.07, -5, torch.int8),
                            ops.quantize_per_channel(x, torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 5, 255]), 0,
                                                     torch.uint8)]
    reference = results["scalar"]
    for isa, got in results.items():
        for a, b in zip(reference, got):
            assert torch.equal(a, b), isa


def test_nan_maps_to_zero_point_and_inf_clamps(isa):
    x = torch.tensor([float("nan"), float("inf"), -float("inf")] * 11)
    got = ops.quantize_per_tensor(x, 0.1, 7, torch.uint8)
    assert got[:3].tolist() == [7, 255, 0]
    assert torch.equal(got.view(11, 3), got[:3].expand(11, 3))


@pytest.mark.parametrize("src,dst", [(torch.uint8, torch.uint8), (torch.uint8, torch.int8),
                                     (torch.int8, torch.uint8), (torch.int8, torch.int8)])
def test_requantize_matches_float_reference(isa, src, dst):
    lo, hi = (0, 255) if src == torch.uint8 else (-128, 127)
    q = torch.randint(lo, hi + 1, (1000,), dtype=src)
    zp_in, zp_out = random_zero_point(src), random_zero_point(dst)
    s_in, s_out = 0.05, 0.07
    got = ops.requantize_per_tensor(q, s_in, zp_in, s_out, zp_out, dst)
    real = ops.dequantize_per_tensor(q, s_in, zp_in)
    want = ops.quantize_per_tensor(real, s_out, zp_out, dst)
    assert (got.int() - want.int()).abs().max() <= 1


def test_qtensor_api(native):
    x = torch.randn(2, 3, 4)
    q = qtorch.quantize_per_tensor(x, 0.05, 128, qtorch.quint8)
    nq = torch.quantize_per_tensor(x, 0.05, 128, torch.quint8)
    assert q.qscheme() == torch.per_tensor_affine and q.dtype == torch.uint8
    assert q.q_scale() == 0.05 and q.q_zero_point() == 128
    assert torch.equal(q.int_repr(), nq.int_repr())
    assert torch.equal(q.dequantize(), nq.dequantize())
    assert torch.equal(q.view(6, 4).int_repr(), nq.view(6, 4).int_repr())
    assert torch.equal(torch.flatten(q, 1).int_repr(), torch.flatten(nq, 1).int_repr())
    assert torch.equal(q.permute(2, 0, 1).int_repr(), nq.permute(2, 0, 1).int_repr())
    assert torch.equal(q[1, :, 2:].int_repr(), nq[1, :, 2:].int_repr())
    assert torch.equal(q.max().int_repr(), nq.max().int_repr())
    assert torch.equal(q.min().int_repr(), nq.min().int_repr())
    assert torch.equal(q.relu().int_repr(), torch.relu(nq).int_repr())
    assert torch.equal(q.sort(dim=2)[0].int_repr(), nq.sort(dim=2)[0].int_repr())
    assert torch.equal(q.topk(2, dim=2)[0].int_repr(), nq.topk(2, dim=2)[0].int_repr())
    assert (q.mean((1, 2)).int_repr().int() - nq.mean((1, 2)).int_repr().int()).abs().max() <= 1
    assert torch.equal(q == q, nq == nq)
    assert torch.equal(q > 0.0, nq.dequantize() > 0.0)
    assert q.equal(q.clone()) and torch.equal(q, q.clone())
    r = q.clone()
    r.relu_()
    assert torch.equal(r.int_repr(), torch.relu(nq).int_repr())
    c = qtorch.quantize_per_tensor(torch.zeros(2, 3, 4), 0.05, 128, qtorch.quint8)
    c.copy_(q)
    assert c.equal(q)
    d = qtorch.quantize_per_tensor(torch.zeros(2, 3, 4), 0.1, 0, qtorch.quint8)
    d.copy_(q)
    assert torch.equal(d.int_repr(), torch.quantize_per_tensor(x.clamp(min=0), 0.1, 0, torch.quint8).int_repr()) or \
        (d.dequantize() - q.dequantize().clamp(min=0)).abs().max() <= 0.1 + 1e-6
    e = q.clone()
    e.resize_(24)
    assert e.shape == (24,)
    parts = q.chunk(2, dim=2)
    assert len(parts) == 2 and parts[1].q_scale() == 0.05


def test_qtensor_per_channel(native):
    x = torch.randn(4, 6)
    scales, zps = (torch.rand(6) + 0.01).double(), torch.randint(-5, 5, (6,))
    q = qtorch.quantize_per_channel(x, scales, zps, 1, torch.qint8)
    nq = torch.quantize_per_channel(x, scales, zps, 1, torch.qint8)
    assert q.qscheme() == torch.per_channel_affine and q.q_per_channel_axis() == 1
    assert torch.equal(q.q_per_channel_scales(), scales.float().double())
    assert torch.equal(q.q_per_channel_zero_points(), zps)
    assert torch.equal(q.int_repr(), nq.int_repr())
    assert torch.equal(q.dequantize(), nq.dequantize())
    sub = q[:, 2:5]
    assert torch.equal(sub.dequantize(), nq[:, 2:5].dequantize())
    assert q.transpose(0, 1).q_per_channel_axis() == 0
    assert torch.equal(q.transpose(0, 1).dequantize(), nq.dequantize().transpose(0, 1))
    with pytest.raises(RuntimeError, match="per channel"):
        q.q_scale()
    with pytest.raises(RuntimeError, match="per-channel"):
        q.view(24)


def test_qtensor_rejects_other_ops():
    q = qtorch.quantize_per_tensor(torch.randn(3), 0.1, 0, qtorch.quint8)
    with pytest.raises(TypeError, match="does not support torch.add"):
        torch.add(q, q)
    with pytest.raises(AttributeError, match="dequantize"):
        q.softmax(0)


def test_torch_quantized_dtypes_accepted_from_user_code():
    q = qtorch.quantize_per_tensor(torch.randn(3), 0.1, 0, torch.quint8)
    assert q.dtype == torch.uint8
    assert qtorch.quantize_per_tensor(torch.randn(3), 0.1, 0, torch.qint8).dtype == torch.int8


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ops.quantize_per_tensor(torch.arange(3), 0.1, 0, torch.uint8), TypeError, "input must be a torch.float32"),
    (lambda: ops.quantize_per_tensor(torch.randn(3), 0.0, 0, torch.uint8), ValueError, "scale must be a positive"),
    (lambda: ops.quantize_per_tensor(torch.randn(3), -1.0, 0, torch.uint8), ValueError, "scale"),
    (lambda: ops.quantize_per_tensor(torch.randn(3), math.nan, 0, torch.uint8), ValueError, "scale"),
    (lambda: ops.quantize_per_tensor(torch.randn(3), math.inf, 0, torch.uint8), ValueError, "scale"),
    (lambda: ops.quantize_per_tensor(torch.randn(3), 1e-45, 0, torch.uint8), ValueError, "scale"),
    (lambda: ops.quantize_per_tensor(torch.randn(3), 0.1, 256, torch.uint8), ValueError, r"zero_point must lie in \[0, 255\]"),
    (lambda: ops.quantize_per_tensor(torch.randn(3), 0.1, -129, torch.int8), ValueError, "zero_point"),
    (lambda: ops.quantize_per_tensor(torch.randn(3), 0.1, 0, torch.float32), TypeError, "dtype must be"),
    (lambda: ops.quantize_per_channel(torch.randn(3, 4), torch.ones(3), torch.zeros(3, dtype=torch.long), 1, torch.uint8),
     ValueError, "scales must be 1-d with 4 elements"),
    (lambda: ops.quantize_per_channel(torch.randn(3, 4), torch.ones(4), torch.zeros(4, dtype=torch.long), 2, torch.uint8),
     IndexError, "axis must lie in"),
    (lambda: ops.quantize_per_channel(torch.randn(3, 4), torch.tensor([1.0, 0, 1, 1]), torch.zeros(4, dtype=torch.long), 1, torch.uint8),
     ValueError, "scales must be positive"),
    (lambda: ops.quantize_per_channel(torch.randn(3, 4), torch.tensor([1.0, math.inf, 1, 1]),
                                      torch.zeros(4, dtype=torch.long), 1, torch.uint8),
     ValueError, "scales must be positive and finite"),
    (lambda: ops.quantize_per_channel(torch.randn(3, 4), torch.ones(4), torch.full((4,), 300), 1, torch.uint8),
     ValueError, "zero_points must lie"),
    (lambda: ops.dequantize_per_tensor(torch.randn(3), 0.1, 0), TypeError, "input must hold quantized values"),
    (lambda: qtorch.quantize_per_tensor(torch.arange(3), 0.1, 0, qtorch.quint8), TypeError, "floating-point"),
    (lambda: qtorch.quantize_per_tensor(torch.randn(3), 0.1, 0, torch.float16), TypeError, "dtype must be one of"),
    (lambda: qtorch.set_kernel_isa("sse9"), ValueError, "unknown ISA 'sse9'"),
])
def test_bad_input_raises_clear_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_fake_kernels_give_shapes_and_dtypes():
    x = torch.empty(2, 3, 5, 7, device="meta").contiguous(memory_format=torch.channels_last)
    y = ops.quantize_per_tensor(x, 0.1, 0, torch.uint8)
    assert y.device.type == "meta" and y.dtype == torch.uint8 and y.shape == x.shape
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert ops.dequantize_per_tensor(y, 0.1, 0).dtype == torch.float32


def test_isa_reporting_and_environment_override():
    assert qtorch.kernel_isa() in qtorch.supported_isas()
    assert qtorch.supported_isas()[0] == "scalar"
    code = "import qtorch; print(qtorch.kernel_isa())"
    out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "QTORCH_ISA": "scalar"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "scalar"
    unsupported = [i for i in ("avx2", "avx512vnni", "amx", "neon") if i not in qtorch.supported_isas()]
    bad = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "QTORCH_ISA": unsupported[0]},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "cannot run" in bad.stderr


def test_importing_and_running_qtorch_creates_no_torch_quantized_dtype():
    code = ("import warnings; warnings.simplefilter('error'); import torch, qtorch; "
            "q = qtorch.quantize_per_tensor(torch.randn(8), 0.1, 3, qtorch.quint8); q.dequantize(); print('ok')")
    out = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
