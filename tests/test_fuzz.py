"""API fuzzing: every torch.ops.qtorch op and every quantized module, called with broken
arguments (wrong dtypes, shapes, strides, negative and huge sizes, NaN/inf scales, mismatched
parameters), must return a correct result or raise a Python exception: never crash, hang or
return garbage.

Each example starts from valid arguments (tests/_op_specs.py) and breaks one or two of them,
with mutations chosen from the op's schema types. The oracle:
  - a Python exception (with a message) is always acceptable;
  - a mutation that keeps the meaning (another memory layout) must give the unmutated result;
  - any other accepted call must be well defined: the same result again, and on the scalar path
    (garbage from uninitialised or out-of-bounds memory fails this);
  - a crash ends the process, a hang trips the watchdog (which dumps the stack and exits).
The CI profile runs a few examples per op; make fuzz runs the "fuzz" profile.
"""
import contextlib
import faulthandler
import math
import os
import resource
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import qtorch
import qtorch.nn.intrinsic.quantized as nniq
import qtorch.nn.quantized as nnq
import qtorch.nn.quantized.dynamic as nnqd
import qtorch.quantization as qq
from _op_specs import SPEC_BY_OP, call, call_binding, draw_layout, registered_ops, schema

HANG_SECONDS = 120
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8, torch.int8, torch.int16,
          torch.int32, torch.int64, torch.bool, torch.complex64]
BAD_FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e-45, 1e-39, 3.5e38, 1e300, 1e-300, 2.0 ** 31,
              -2.0 ** 63]
BAD_INTS = [-1, 0, 1, 2, 255, 256, -129, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 62, 2 ** 63 - 1, -(2 ** 63)]


# ---------- mutations, by schema type ----------

def mutate_tensor(draw, t):
    """(new tensor, kind): kind "same" keeps the logical tensor (only its layout changes)."""
    if not isinstance(t, torch.Tensor):
        return draw(st.sampled_from([None, torch.randn(3), torch.zeros(0, dtype=torch.uint8)])), "value"
    kind = draw(st.sampled_from(["layout", "dtype", "shape", "values", "stride0", "empty", "scalar", "random",
                                 "grad", "meta", "overlap"]))
    if kind == "layout":
        return draw_layout(draw, t), "same"
    if kind == "dtype":
        return t.to(draw(st.sampled_from([d for d in DTYPES if d != t.dtype]))), "value"
    if kind == "shape":
        options = [t.reshape(-1), t.unsqueeze(0), t.unsqueeze(-1)]
        if t.dim():
            options += [t.narrow(-1, 0, t.shape[-1] // 2), t.sum(-1).to(t.dtype), t.movedim(-1, 0)]
        return draw(st.sampled_from(options)), "value"
    if kind == "values":
        if t.is_floating_point():
            # Through float64, so out-of-range values become inf in narrower dtypes.
            return torch.full(t.shape, draw(st.sampled_from(BAD_FLOATS)), dtype=torch.float64).to(t.dtype), "value"
        info = torch.iinfo(t.dtype) if t.dtype != torch.bool else None
        if info is None:
            return ~t, "value"
        return torch.full_like(t, draw(st.sampled_from([info.min, info.max, 0, -1 if info.min < 0 else 1]))), "value"
    if kind == "stride0":
        # Every element aliases the first one.
        if t.dim() == 0 or t.numel() == 0:
            return t, "same"
        return t.reshape(-1)[:1].expand(t.shape), "value"
    if kind == "empty":
        return t.new_empty((0,) * max(1, t.dim())), "value"
    if kind == "scalar":
        return t.reshape(-1)[0].clone() if t.numel() else t.new_zeros(()), "value"
    if kind == "random":
        shape = draw(st.lists(st.integers(0, 9), min_size=0, max_size=5))
        return torch.randint(-5, 250, shape).to(t.dtype), "value"
    if kind == "grad":
        if t.is_floating_point():
            return t.detach().clone().requires_grad_(), "same"
        return t, "same"
    if kind == "meta":
        return t.to("meta"), "meta"
    # "overlap": a view whose elements overlap in memory (stride smaller than the row).
    if t.dim() >= 2 and t.numel() > 1:
        flat = t.reshape(-1)
        return flat.as_strided((t.shape[0], t.shape[-1]), (1, 1)) if flat.numel() >= t.shape[0] + t.shape[-1] else t, "value"
    return t, "same"


def mutate_value(draw, type_name, value):
    if type_name in ("Tensor", "Optional[Tensor]"):
        if type_name == "Optional[Tensor]" and value is not None and draw(st.booleans()):
            return None, "value"
        return mutate_tensor(draw, value)
    if type_name in ("float", "Optional[float]"):
        options = BAD_FLOATS + ([None] if type_name.startswith("Optional") else [])
        return draw(st.sampled_from(options)), "value"
    if type_name in ("int", "SymInt", "Optional[int]"):
        options = BAD_INTS + ([None] if type_name.startswith("Optional") else [])
        return draw(st.one_of(st.sampled_from(options), st.integers(-300, 300))), "value"
    if type_name == "bool":
        return not value, "value"
    if type_name == "ScalarType":
        return draw(st.sampled_from(DTYPES)), "value"
    if type_name in ("List[int]", "List[SymInt]"):
        value = list(value)
        options = [[], value + [1], value[:1], [-1] * len(value), [0] * len(value), [2 ** 31] * len(value),
                   [2 ** 62] + value[1:], [draw(st.sampled_from(BAD_INTS)) for _ in value]]
        return draw(st.sampled_from(options)), "value"
    if type_name == "List[float]":
        value = list(value)
        return draw(st.sampled_from([[], value + [1.0], [draw(st.sampled_from(BAD_FLOATS)) for _ in value]])), "value"
    if type_name == "List[Tensor]":
        value = list(value)
        if not value:
            return [torch.zeros(1, dtype=torch.uint8)], "value"
        i = draw(st.integers(0, len(value) - 1))
        mutated, kind = mutate_tensor(draw, value[i])
        choice = draw(st.integers(0, 2))
        if choice == 2:
            return value[:i] + [mutated] + value[i + 1:], "meta" if kind == "meta" else "value"
        return [[], value + value[:1]][choice], "value"
    if type_name == "str":
        return draw(st.sampled_from(["", "bogus", "SCALAR", "scalar ", "amx", "neon", "x" * 1000])), "value"
    return value, "same"


# ---------- oracle ----------

@contextlib.contextmanager
def watchdog():
    """A hang (in C++ as well as Python) dumps every thread's stack and ends the run. To the
    process's own stderr: pytest captures sys.stderr (pyproject's --capture=sys)."""
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@contextlib.contextmanager
def memory_cap(extra_bytes=6 << 30):
    """Huge sizes must fail to allocate (an exception), not eat the machine: cap the address space
    at what the process has now plus extra_bytes. Not under AddressSanitizer (it reserves terabytes)."""
    if "ASAN_OPTIONS" in os.environ:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (current + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def outputs(result):
    """The result's tensors (and other values), nested tuples flattened (an LSTM's (y, (h, c)))."""
    if isinstance(result, (tuple, list)):
        return [leaf for item in result for leaf in outputs(item)]
    return [result]


def same_result(a, b):
    if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
        return False
    if not isinstance(a, torch.Tensor):
        return a == b
    if a.device.type == "meta" or b.device.type == "meta":
        return a.shape == b.shape and a.dtype == b.dtype
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b) or (
        a.is_floating_point() and torch.equal(a.isnan(), b.isnan()) and torch.equal(a[~a.isnan()], b[~b.isnan()]))


def assert_same(want, got, what):
    want, got = outputs(want), outputs(got)
    assert len(want) == len(got), what
    for a, b in zip(want, got):
        assert same_result(a, b), what


# A crash kills the process before Hypothesis can report the example: with this variable set
# (make test sets it), every guarded call first writes its arguments there, for the Makefile
# to print when the run dies.
LAST_CALL_FILE = os.environ.get("QTORCH_FUZZ_LAST_CALL")


def describe(value) -> str:
    if isinstance(value, torch.Tensor):
        text = f"Tensor{tuple(value.shape)} {value.dtype} {value.device.type} stride={value.stride()}"
        text += f" offset={value.storage_offset()}"
        return text + (f" values={value.tolist()}" if value.device.type != "meta" and value.numel() <= 16 else "")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    return repr(value)


def run_guarded(fn, *args):
    """(result, None) or (None, exception); a non-Exception (a crash surfacing otherwise) propagates."""
    if LAST_CALL_FILE:
        with open(LAST_CALL_FILE, "w") as f:
            f.write(f"{getattr(fn, '__name__', fn)} {describe(list(args))}\n")
    with watchdog(), memory_cap():
        try:
            return fn(*args), None
        except Exception as e:  # noqa: BLE001: any Python exception is an acceptable answer
            assert str(e), f"{type(e).__name__} without a message"
            return None, e


# ---------- ops ----------

FUZZ_OPS = [op for op in registered_ops() if op in SPEC_BY_OP]


def test_every_op_has_a_spec():
    missing = [op for op in registered_ops() if op not in SPEC_BY_OP]
    assert not missing, f"add an OpSpec to tests/_op_specs.py for: {missing}"


def draw_broken_arguments(op, data):
    """A valid case of the op with one or two of its arguments broken, and the kinds of breakage."""
    case = SPEC_BY_OP[op].draw(data.draw)
    arguments = schema(op).arguments
    args = list(case.args)
    if not args:
        positions = []
    else:
        positions = data.draw(st.lists(st.integers(0, len(args) - 1), min_size=1, max_size=2, unique=True))
    kinds = []
    for i in positions:
        args[i], kind = mutate_value(data.draw, str(arguments[i].real_type), args[i])
        kinds.append(kind)
    return case, args, kinds


@pytest.mark.parametrize("op", FUZZ_OPS)
@given(data=st.data())
def test_op_survives_broken_arguments(op, data):
    spec = SPEC_BY_OP[op]
    case, args, kinds = draw_broken_arguments(op, data)
    isa = qtorch.kernel_isa()
    try:
        base = None if spec.stateful else call(op, case.args)
        got, error = run_guarded(call, op, args)
        if error is not None or spec.stateful:
            return
        if "meta" in kinds:
            # The Meta kernel ran: shapes only, and never uninitialised CPU memory.
            assert all(o.device.type == "meta" for o in outputs(got) if isinstance(o, torch.Tensor)), op
            return
        if all(kind == "same" for kind in kinds):
            assert_same(base, got, f"{op}: another layout of the same arguments changed the result")
            return
        assert_well_defined(op, args, got)
    finally:
        qtorch.set_kernel_isa(isa)


def assert_well_defined(op, args, got):
    """An accepted call's result is no accident of memory: the same again, and on the scalar path."""
    isa = qtorch.kernel_isa()
    again, error = run_guarded(call, op, args)
    assert error is None, f"{op}: accepted once, then raised {error!r}"
    assert_same(got, again, f"{op}: two calls with the same arguments differ")
    with qtorch.kernel_isa_scope("scalar"):
        scalar, error = run_guarded(call, op, args)
    assert error is None, f"{op}: accepted on {isa}, raised on scalar: {error!r}"
    assert_same(got, scalar, f"{op}: {isa} and scalar paths differ on accepted arguments")


def with_one_dimension_empty(args):
    """Each way to empty one dimension of one tensor argument (a tensor-list element counts)."""
    for i, value in enumerate(args):
        tensors = value if isinstance(value, (list, tuple)) else [value]
        for j, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor):
                continue
            for d in range(t.dim()):
                shape = list(t.shape)
                shape[d] = 0
                emptied = t.new_empty(shape)
                new = list(args)
                new[i] = type(value)([*value[:j], emptied, *value[j + 1:]]) if tensors is value else emptied
                yield new


@pytest.mark.parametrize("op", [op for op in FUZZ_OPS if not SPEC_BY_OP[op].stateful])
@given(data=st.data())
def test_op_survives_each_dimension_emptied(op, data):
    """Every dimension of every tensor argument set to 0 in turn: a conv input with no channels
    once divided by zero in the layout code, found only by chance by the broken-argument test."""
    case = SPEC_BY_OP[op].draw(data.draw)
    for args in with_one_dimension_empty(list(case.args)):
        got, error = run_guarded(call, op, args)
        if error is None:
            assert_well_defined(op, args, got)


def is_schema_mismatch(error: Exception) -> bool:
    """torch.ops' own answer to arguments of the wrong Python type (a binding raises TypeError)."""
    return isinstance(error, RuntimeError) and any(
        text in str(error) for text in ("Expected a value of type", "is missing value for argument"))


@pytest.mark.parametrize("op", FUZZ_OPS)
@given(data=st.data())
def test_binding_answers_broken_arguments_like_the_operator(op, data):
    """qtorch's modules call the typed bindings, not torch.ops.qtorch: the same answer, never a crash."""
    case, args, kinds = draw_broken_arguments(op, data)
    isa = qtorch.kernel_isa()
    try:
        want, op_error = run_guarded(call, op, args)
        qtorch.set_kernel_isa(isa)
        got, binding_error = run_guarded(call_binding, op, args)
    finally:
        qtorch.set_kernel_isa(isa)
    if op_error is None:
        assert binding_error is None, f"{op}: the operator accepted what its binding rejects: {binding_error!r}"
        assert_same(want, got, f"{op}: the binding and the operator differ")
        return
    assert binding_error is not None, f"{op}: the binding accepted what the operator rejects: {op_error!r}"
    if is_schema_mismatch(op_error):
        assert isinstance(binding_error, TypeError), f"{op}: {binding_error!r} for {op_error!r}"
    else:
        assert type(binding_error) is type(op_error), f"{op}: {binding_error!r} for {op_error!r}"


# ---------- modules ----------

def _weight(n, k):
    w = torch.randint(-128, 128, (n, k), dtype=torch.int8)
    return w, torch.rand(n) * 0.01 + 0.001, torch.zeros(n, dtype=torch.int32)


def _static(module, input_qparams=(0.05, 128), output_qparams=(0.1, 100)):
    module.set_input_qparams(*input_qparams)
    module.scale, module.zero_point = output_qparams
    return module


def linear_module(cls):
    def make():
        m = cls(24, 10)
        m.set_weight_bias(_weight(10, 24), torch.randn(10))
        return _static(m), torch.randint(0, 256, (3, 24), dtype=torch.uint8)
    return make


def conv_module(cls, groups=1):
    def make():
        m = cls(6, 12, 3, padding=1, groups=groups)
        w, s, z = _weight(12, 6 // groups * 9)
        m.set_weight_bias((w.view(12, 6 // groups, 3, 3), s, z), torch.randn(12))
        return _static(m), torch.randint(0, 256, (2, 6, 5, 7), dtype=torch.uint8)
    return make


def dynamic_linear(dtype):
    def make():
        return nnqd.Linear.from_float(nn.Linear(24, 10)) if dtype == torch.qint8 else _fp16_linear(), torch.randn(3, 24)
    return make


def _fp16_linear():
    m = nnqd.Linear(24, 10, dtype=torch.float16)
    m.set_weight_bias(torch.randn(10, 24), torch.randn(10))
    return m


def same_params_module(make_module, input_shape=(2, 5, 6, 7)):
    def make():
        m = make_module()
        m.set_input_qparams(0.05, 128)
        if not isinstance(m, (nnq.ReLU, nnq.ReLU6, nnq.MaxPool2d, nnq.AvgPool2d, nnq.AdaptiveAvgPool2d)):
            m.scale, m.zero_point = 0.07, 90
        return m, torch.randint(0, 256, input_shape, dtype=torch.uint8)
    return make


class QFunctionalCall(nn.Module):
    """A QFunctional method called the way a converted forward calls it (the module fuzz mutates the
    QFunctional's constants through this wrapper's attributes)."""

    def __init__(self, method):
        super().__init__()
        self.qf = nnq.QFunctional()
        self.qf.set_input_qparams(0.05, 128)
        self.qf.scale, self.qf.zero_point = 0.08, 100
        self.method = method

    def forward(self, x):
        if self.method == "cat":
            return self.qf.cat([x, x], dim=1)
        if self.method in ("add_scalar", "mul_scalar"):
            return getattr(self.qf, self.method)(x, -1.5)
        return getattr(self.qf, self.method)(x, x)

    def __getattr__(self, name):
        if name in MODULE_CONSTANTS:
            return getattr(self._modules["qf"], name)
        return super().__getattr__(name)

    def __setattr__(self, name, value):
        if name in MODULE_CONSTANTS:
            setattr(self.qf, name, value)
        else:
            super().__setattr__(name, value)


def qfunctional(method):
    return lambda: (QFunctionalCall(method), torch.randint(0, 256, (2, 5, 3, 4), dtype=torch.uint8))


def quantize_module():
    return nnq.Quantize(0.05, 100), torch.randn(3, 8)


class Calling(nn.Module):
    """Calls ``inner`` as ``call(inner, *inputs)``: a module whose forward takes a tuple (an LSTM's
    (h, c)) gets each tensor as its own input, so the fuzz can break each one."""

    def __init__(self, inner, call):
        super().__init__()
        self.inner, self.call = inner, call

    def forward(self, *inputs):
        return self.call(self.inner, *inputs)


def dynamic(float_module, dtype=torch.qint8):
    return qq.quantize_dynamic(nn.Sequential(float_module).eval(), dtype=dtype)[0]


def recurrent_module(float_cls, dtype, lstm, layers=2, bidirectional=True):
    def make():
        m = dynamic(float_cls(8, 6, num_layers=layers, bidirectional=bidirectional), dtype)
        x, h = torch.randn(5, 3, 8), torch.randn(layers * (1 + bidirectional), 3, 6)
        if lstm:
            return Calling(m, lambda m, x, h, c: m(x, (h, c))), (x, h, torch.randn(h.shape))
        return m, (x, h)
    return make


def recurrent_cell(float_cls, dtype, lstm):
    def make():
        m = dynamic(float_cls(8, 6), dtype)
        x, h = torch.randn(3, 8), torch.randn(3, 6)
        if lstm:
            return Calling(m, lambda m, x, h, c: m(x, (h, c))), (x, h, torch.randn(h.shape))
        return m, (x, h)
    return make


def transformer(encoder):
    def make():
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        m = dynamic(nn.TransformerEncoder(layer, 1, enable_nested_tensor=False) if encoder else layer)
        return m, torch.randn(2, 5, 16)
    return make


# name -> (the quantized module class it fuzzes, make() -> (module, input or tuple of inputs)).
MODULES = {
    "nnq.ReLU": (nnq.ReLU, same_params_module(nnq.ReLU)),
    "nnq.ReLU6": (nnq.ReLU6, same_params_module(nnq.ReLU6)),
    "nnq.Hardswish": (nnq.Hardswish, same_params_module(nnq.Hardswish)),
    "nnq.MaxPool2d": (nnq.MaxPool2d, same_params_module(lambda: nnq.MaxPool2d(3, 2, 1))),
    "nnq.AvgPool2d": (nnq.AvgPool2d, same_params_module(lambda: nnq.AvgPool2d(3, 2, 1))),
    "nnq.AdaptiveAvgPool2d": (nnq.AdaptiveAvgPool2d, same_params_module(lambda: nnq.AdaptiveAvgPool2d((2, 3)))),
    "nnq.Quantize": (nnq.Quantize, quantize_module),
    "nnq.DeQuantize": (nnq.DeQuantize, same_params_module(nnq.DeQuantize)),
    **{f"nnq.QFunctional.{m}": (nnq.QFunctional, qfunctional(m))
       for m in ["add", "mul", "add_relu", "cat", "add_scalar", "mul_scalar"]},
    "nnq.Linear": (nnq.Linear, linear_module(nnq.Linear)),
    "nniq.LinearReLU": (nniq.LinearReLU, linear_module(nniq.LinearReLU)),
    "nnqd.Linear": (nnqd.Linear, dynamic_linear(torch.qint8)),
    "nnqd.Linear-fp16": (nnqd.Linear, dynamic_linear(torch.float16)),
    "nnq.Conv2d": (nnq.Conv2d, conv_module(nnq.Conv2d)),
    "nnq.Conv2d-depthwise": (nnq.Conv2d, conv_module(nnq.Conv2d, groups=6)),
    "nniq.ConvReLU2d": (nniq.ConvReLU2d, conv_module(nniq.ConvReLU2d)),
    "nnqd.LSTM": (nnqd.LSTM, recurrent_module(nn.LSTM, torch.qint8, lstm=True)),
    "nnqd.LSTM-fp16": (nnqd.LSTM, recurrent_module(nn.LSTM, torch.float16, lstm=True, layers=1)),
    "nnqd.GRU": (nnqd.GRU, recurrent_module(nn.GRU, torch.qint8, lstm=False)),
    "nnqd.GRU-fp16": (nnqd.GRU, recurrent_module(nn.GRU, torch.float16, lstm=False, bidirectional=False)),
    "nnqd.LSTMCell": (nnqd.LSTMCell, recurrent_cell(nn.LSTMCell, torch.qint8, lstm=True)),
    "nnqd.GRUCell": (nnqd.GRUCell, recurrent_cell(nn.GRUCell, torch.qint8, lstm=False)),
    "nnqd.RNNCell": (nnqd.RNNCell, recurrent_cell(nn.RNNCell, torch.qint8, lstm=False)),
    "nnqd.RNNCell-fp16": (nnqd.RNNCell, recurrent_cell(nn.RNNCell, torch.float16, lstm=False)),
    "nnqd.TransformerEncoderLayer": (nnqd.TransformerEncoderLayer, transformer(encoder=False)),
    "nnqd.TransformerEncoder": (nnqd.TransformerEncoder, transformer(encoder=True)),
}
MODULE_CONSTANTS = ["scale", "zero_point", "input_scale", "input_zero_point", "float_output", "input_scales",
                    "input_zero_points"]
# Exported module classes that run no qtorch op, so have nothing of qtorch's to fuzz.
NOT_QUANTIZED = {
    nnq.FloatFunctional: "float torch ops plus an observer slot: the calibration-time twin of QFunctional",
}


def quantized_module_classes():
    """Every nn.Module class the quantized packages export (later ones must join MODULES)."""
    found = set()
    for package in (nnq, nnqd, nniq):
        for value in vars(package).values():
            if isinstance(value, type) and issubclass(value, nn.Module):
                found.add(value)
    return found


def test_every_quantized_module_class_is_fuzzed():
    fuzzed = {cls for cls, _ in MODULES.values()}
    missing = sorted(f"{c.__module__}.{c.__qualname__}" for c in quantized_module_classes() - fuzzed - set(NOT_QUANTIZED))
    assert not missing, f"add an entry to MODULES in tests/test_fuzz.py for: {missing}"


def constant_type(value):
    """The schema type name mutate_value understands for a module constant."""
    if isinstance(value, list):
        return "List[float]" if any(isinstance(v, float) for v in value) else "List[int]"
    return type(value).__name__


@pytest.mark.parametrize("name", sorted(MODULES))
@given(data=st.data())
def test_module_survives_broken_inputs_and_parameters(name, data):
    cls, make = MODULES[name]
    module, inputs = make()
    inputs = list(inputs) if isinstance(inputs, tuple) else [inputs]
    inner = module.inner if isinstance(module, Calling) else module.qf if isinstance(module, QFunctionalCall) else module
    assert type(inner) is cls, name
    constants = [attr for attr in MODULE_CONSTANTS if hasattr(module, attr)]
    if constants:
        module.float_output = data.draw(st.booleans())
    base = module(*inputs)
    target = data.draw(st.sampled_from(["input", "input", "float input"] + (["constant"] if constants else [])))
    i = data.draw(st.integers(0, len(inputs) - 1))
    if target == "input":
        inputs[i], kind = mutate_tensor(data.draw, inputs[i])
    elif target == "float input":
        x = torch.randn(inputs[i].shape) * data.draw(st.sampled_from([1.0, 1e30]))
        if x.dim():
            x[..., 0] = data.draw(st.sampled_from([math.nan, math.inf, 0.0]))
        inputs[i], kind = x, "value"
    else:
        attr = data.draw(st.sampled_from(constants))
        value = getattr(module, attr)
        setattr(module, attr, mutate_value(data.draw, constant_type(value), value)[0])
        kind = "value"
    got, error = run_guarded(module, *inputs)
    if error is not None:
        return
    if kind == "same":
        assert_same(base, got, f"{name}: another layout of the same input changed the result")
        return
    again, error = run_guarded(module, *inputs)
    assert error is None and (again is None) == (got is None)
    assert_same(got, again, f"{name}: two calls with the same input differ")


# ---------- regression cases: bugs the fuzzer found ----------

def test_meta_weight_with_cpu_input_gives_a_meta_result_not_cpu_garbage():
    # Any meta argument sends the call to the Meta kernel; it returned an uninitialised CPU
    # tensor when the input was on the CPU (fixed: Meta kernels allocate on the meta device).
    ops = torch.ops.qtorch
    x = torch.randint(0, 256, (2, 8), dtype=torch.uint8)
    packed, sums = ops.linear_prepack(torch.randint(-128, 128, (4, 8), dtype=torch.int8))
    y = ops.linear(x, packed.to("meta"), sums, 8, None, 0.1, 0, torch.ones(1), torch.zeros(1, dtype=torch.int32),
                   0.1, 0)
    assert y.device.type == "meta" and y.shape == (2, 4)
    q = ops.quantize_per_channel(torch.randn(3, 5), torch.ones(3, device="meta"), torch.zeros(3, dtype=torch.int32),
                                 0, torch.uint8)
    assert q.device.type == "meta"


@pytest.mark.parametrize("op", ["upsample_nearest2d", "upsample_bilinear2d"])
def test_resize_to_a_huge_size_raises_or_returns_empty_without_allocating_coordinates(op):
    # The fuzzer (under AddressSanitizer) found both resize ops allocating their per-column
    # coordinate tables (24 bytes a column) from output_size before the output: 48 GB for a width
    # of 2^31 even when the output was empty, and an abort under ASan, whose failed operator new is
    # fatal. Fixed: the output is allocated first (an impossible size raises there), an empty output
    # returns at once, and the tables come from torch's allocator (a failure raises).
    fn = getattr(torch.ops.qtorch, op)
    extra = (False,) if op == "upsample_bilinear2d" else ()
    empty = fn(torch.zeros(0, 3, 4, 4, dtype=torch.uint8), [1, 2 ** 31], *extra)
    assert empty.shape == (0, 3, 1, 2 ** 31)
    with pytest.raises(RuntimeError):
        fn(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), [2 ** 31, 2 ** 31], *extra)
