"""Observers and fake quantization: the same numbers as torch.ao's on the same data."""
import pytest
import torch

import qtorch.quantization as qq

tq = pytest.importorskip("torch.ao.quantization")

_NATIVE_DTYPE = {torch.uint8: "quint8", torch.int8: "qint8"}


def _native(cls_name, **kwargs):
    if "dtype" in kwargs:
        kwargs["dtype"] = getattr(torch, _NATIVE_DTYPE[kwargs["dtype"]])
    return getattr(tq, cls_name)(**kwargs)


def _batches(shape, count=3):
    # Shifted and scaled so ranges grow, shrink and change sign across batches.
    return [torch.randn(shape) * (1 + 2 * i) + (i - 1) for i in range(count)]


def _same_qparams(ours, theirs):
    scale, zero_point = ours.calculate_qparams()
    native_scale, native_zero_point = theirs.calculate_qparams()
    torch.testing.assert_close(scale, native_scale, rtol=0, atol=0)
    assert torch.equal(zero_point.to(torch.int64), native_zero_point.to(torch.int64))


PER_TENSOR_CASES = [
    dict(dtype=torch.uint8, qscheme=torch.per_tensor_affine),
    dict(dtype=torch.uint8, qscheme=torch.per_tensor_symmetric),
    dict(dtype=torch.int8, qscheme=torch.per_tensor_affine),
    dict(dtype=torch.int8, qscheme=torch.per_tensor_symmetric),
    dict(dtype=torch.uint8, qscheme=torch.per_tensor_affine, reduce_range=True),
    dict(dtype=torch.int8, qscheme=torch.per_tensor_symmetric, reduce_range=True),
    dict(dtype=torch.uint8, qscheme=torch.per_tensor_affine, quant_min=0, quant_max=127),
    dict(dtype=torch.uint8, qscheme=torch.per_tensor_symmetric, quant_min=0, quant_max=127),
    dict(dtype=torch.int8, qscheme=torch.per_tensor_symmetric, quant_min=-127, quant_max=127),
]


@pytest.mark.parametrize("kwargs", PER_TENSOR_CASES)
@pytest.mark.parametrize("name", ["MinMaxObserver", "MovingAverageMinMaxObserver"])
def test_per_tensor_observers_match_torch(native, name, kwargs):
    ours = getattr(qq, name)(**kwargs)
    theirs = _native(name, **kwargs)
    for x in _batches((3, 17, 5)):
        assert ours(x) is x
        theirs(x)
    assert ours.dtype == kwargs["dtype"]
    _same_qparams(ours, theirs)


PER_CHANNEL_CASES = [
    dict(dtype=torch.int8, qscheme=torch.per_channel_symmetric, ch_axis=0),
    dict(dtype=torch.int8, qscheme=torch.per_channel_affine, ch_axis=1),
    dict(dtype=torch.uint8, qscheme=torch.per_channel_affine, ch_axis=2),
    dict(dtype=torch.uint8, qscheme=torch.per_channel_symmetric, ch_axis=0),
    dict(dtype=torch.int8, qscheme=torch.per_channel_symmetric, ch_axis=0, quant_min=-127, quant_max=127),
]


@pytest.mark.parametrize("kwargs", PER_CHANNEL_CASES)
@pytest.mark.parametrize("name", ["PerChannelMinMaxObserver", "MovingAveragePerChannelMinMaxObserver"])
def test_per_channel_observers_match_torch(native, name, kwargs):
    ours = getattr(qq, name)(**kwargs)
    theirs = _native(name, **kwargs)
    for x in _batches((7, 3, 5)):
        ours(x)
        theirs(x)
    _same_qparams(ours, theirs)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(reduce_range=True),
    dict(qscheme=torch.per_tensor_symmetric),
    dict(dtype=torch.int8, qscheme=torch.per_tensor_symmetric),
    dict(quant_min=0, quant_max=127),
    dict(bins=256),
])
def test_histogram_observer_matches_torch(native, kwargs):
    ours = qq.HistogramObserver(**kwargs)
    theirs = _native("HistogramObserver", **kwargs)
    # Heavy tails make the L2 search clip the range.
    batches = [torch.randn(4, 33) * 2, torch.distributions.StudentT(2.0).sample((5, 40)), torch.rand(3, 31) * 10 - 1]
    for x in batches:
        ours(x)
        theirs(x)
    torch.testing.assert_close(ours.histogram, theirs.histogram)
    _same_qparams(ours, theirs)
    if ours.qscheme == torch.per_tensor_affine:  # the search never widens the observed range
        scale, _ = ours.calculate_qparams()
        full = ours.max_val - ours.min_val
        assert scale.item() * (ours.quant_max - ours.quant_min) <= full.item() * 1.0001 + 1e-6


def test_histogram_observer_one_value_then_spread(native):
    ours, theirs = qq.HistogramObserver(), _native("HistogramObserver")
    for x in (torch.full((5,), 2.0), torch.randn(50)):
        ours(x)
        theirs(x)
    _same_qparams(ours, theirs)


def test_torch_quantized_dtypes_are_mapped(native):
    observer = qq.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    assert observer.dtype == torch.int8
    assert (observer.quant_min, observer.quant_max) == (-128, 127)
    assert qq.MinMaxObserver(dtype=torch.quint8).dtype == torch.uint8


def test_defaults_and_with_args():
    factory = qq.MinMaxObserver.with_args(dtype=torch.int8, qscheme=torch.per_tensor_symmetric).with_args(quant_min=-127, quant_max=127)
    first, second = factory(), factory()
    assert first is not second
    assert (first.quant_min, first.quant_max, first.dtype) == (-127, 127, torch.int8)
    assert qq.default_observer().quant_max == 127
    assert qq.default_weight_observer().qscheme == torch.per_tensor_symmetric
    assert qq.default_per_channel_weight_observer().ch_axis == 0
    assert qq.NoopObserver().dtype == torch.float16
    assert qq.PlaceholderObserver(dtype=torch.float16).dtype == torch.float16


def test_unobserved_returns_default_with_warning():
    with pytest.warns(UserWarning, match="must run observer"):
        scale, zero_point = qq.MinMaxObserver().calculate_qparams()
    assert scale.item() == 1.0 and zero_point.item() == 0


def test_recording_noop_placeholder():
    recorder = qq.RecordingObserver()
    x = torch.randn(3)
    recorder(x)
    recorder(x * 2)
    assert len(recorder.get_tensor_value()) == 2 and torch.equal(recorder.get_tensor_value()[1], x * 2)
    for observer in (recorder, qq.NoopObserver(), qq.PlaceholderObserver()):
        assert observer(x) is x
        with pytest.raises(RuntimeError, match="should not be called"):
            observer.calculate_qparams()


@pytest.mark.parametrize("bad, error", [
    (dict(qscheme=torch.per_channel_affine), NotImplementedError),
    (dict(dtype=torch.float32), ValueError),
    (dict(quant_min=1, quant_max=10), ValueError),
    (dict(quant_min=10, quant_max=5), ValueError),
    (dict(qscheme=torch.per_tensor_symmetric, reduce_range=True), NotImplementedError),
])
def test_bad_observer_arguments(bad, error):
    with pytest.raises(error):
        qq.MinMaxObserver(**bad)


def test_per_channel_state_dict_round_trip():
    observer = qq.PerChannelMinMaxObserver(dtype=torch.int8, qscheme=torch.per_channel_symmetric)
    observer(torch.randn(6, 4))
    fresh = qq.PerChannelMinMaxObserver(dtype=torch.int8, qscheme=torch.per_channel_symmetric)
    fresh.load_state_dict(observer.state_dict())
    assert torch.equal(fresh.calculate_qparams()[0], observer.calculate_qparams()[0])


# --- FakeQuantize -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("factory_name", ["default_fake_quant", "default_weight_fake_quant", "default_per_channel_weight_fake_quant"])
def test_fake_quantize_matches_torch(native, factory_name):
    ours = getattr(qq, factory_name)()
    theirs = getattr(tq, factory_name)()
    for x in _batches((6, 5, 3)):
        x = x.requires_grad_()
        y = ours(x)
        y_native = theirs(x.detach())
        torch.testing.assert_close(y, y_native, rtol=0, atol=0)
    torch.testing.assert_close(ours.scale, theirs.scale, rtol=0, atol=0)
    assert torch.equal(ours.zero_point, theirs.zero_point.to(ours.zero_point.dtype))


def test_fake_quantize_switches_and_straight_through_gradient():
    fq = qq.FakeQuantize(observer=qq.MovingAverageMinMaxObserver, quant_min=0, quant_max=255)
    x = torch.linspace(-1, 1, 101, requires_grad=True)
    y = fq(x)
    assert y.unique().numel() <= 256 and not torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # inside the range: gradient passes straight through
    fq.disable_observer()
    frozen = fq.scale.clone()
    fq(x * 10)
    assert torch.equal(fq.scale, frozen)
    fq.disable_fake_quant()
    assert torch.equal(fq(x), x)
    model = torch.nn.Sequential(qq.default_fake_quant())
    model.apply(qq.enable_fake_quant)
    model.apply(qq.enable_observer)
    assert model[0].fake_quant_enabled.item() == 1 and model[0].observer_enabled.item() == 1


def test_fake_quantize_state_dict_per_channel():
    fq = qq.default_per_channel_weight_fake_quant()
    fq(torch.randn(5, 3))
    fresh = qq.default_per_channel_weight_fake_quant()
    fresh.load_state_dict(fq.state_dict())
    assert torch.equal(fresh.scale, fq.scale)


# --- QConfig ------------------------------------------------------------------------------------------------

def test_qconfig_rejects_instances_and_non_callables():
    with pytest.raises(ValueError, match="instance"):
        qq.QConfig(activation=qq.MinMaxObserver(), weight=qq.default_weight_observer)
    with pytest.raises(TypeError):
        qq.QConfig(activation=3, weight=qq.default_weight_observer)


def test_default_qconfigs():
    qconfig = qq.get_default_qconfig()
    activation = qconfig.activation()
    assert isinstance(activation, qq.HistogramObserver) and (activation.quant_min, activation.quant_max) == (0, 255)
    assert qconfig.weight().qscheme == torch.per_channel_symmetric
    assert qq.get_default_qconfig("fbgemm").activation().quant_max == 127
    qat = qq.get_default_qat_qconfig()
    assert isinstance(qat.activation(), qq.FakeQuantize) and qat.activation().quant_max == 255
    assert qq.float16_dynamic_qconfig.weight().dtype == torch.float16
    assert qq.per_channel_dynamic_qconfig.weight().qscheme == torch.per_channel_symmetric
    assert qq.QConfigDynamic(weight=qq.default_weight_observer).weight is qq.default_weight_observer
    with pytest.raises(ValueError, match="backend"):
        qq.get_default_qconfig("tpu")
