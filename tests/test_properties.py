"""Property tests for every op in tests/_op_specs.py: random shapes (0- and 1-sized dims
included), random valid quantization parameters and data, both memory formats.

For each drawn case: every kernel path gives exactly the scalar path's result, on one thread and
on all; the scalar result matches the float reference (within 1 for integer outputs); the op does
not write to its inputs; the Meta kernel gives the output's shape and dtype. Example counts come
from the hypothesis profile (tests/conftest.py: "ci" by default, "fuzz" under make fuzz)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import qtorch
from _op_specs import SPECS, call, registered_ops

# Specs of ops this build registers (a spec may land before its op).
PROPERTY_SPECS = [spec for spec in SPECS if not spec.stateful and spec.op in registered_ops()]
# The ops that hold process state and no arithmetic: the only ones without a property.
STATE_OPS = {"kernel_isa", "supported_isas", "set_kernel_isa"}


def test_every_op_has_a_property_spec():
    with_property = {spec.op for spec in PROPERTY_SPECS if spec.check is not None}
    missing = [op for op in registered_ops() if op not in with_property and op not in STATE_OPS]
    assert not missing, f"add an OpSpec with a float-reference check to tests/_op_specs.py for: {missing}"
    stateful = {spec.op for spec in SPECS if spec.stateful}
    assert stateful <= STATE_OPS, f"only the ISA switch is exempt from properties: {stateful - STATE_OPS}"


def outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def assert_identical(want, got, what):
    for a, b in zip(outputs(want), outputs(got)):
        assert a.dtype == b.dtype and a.shape == b.shape, what
        assert torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
                                     and torch.equal(a[~a.isnan()], b[~b.isnan()])), what


def clone_args(args):
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


def to_meta(args):
    return [a.to("meta") if isinstance(a, torch.Tensor) else a for a in args]


@pytest.mark.parametrize("spec", PROPERTY_SPECS, ids=[spec.op for spec in PROPERTY_SPECS])
@given(data=st.data())
def test_op_matches_scalar_path_and_float_reference(spec, data):
    case = spec.draw(data.draw)
    before = clone_args(case.args)
    with qtorch.kernel_isa_scope("scalar"):
        reference = call(spec.op, case.args)
    threads = torch.get_num_threads()
    for isa in qtorch.supported_isas():
        with qtorch.kernel_isa_scope(isa):
            assert_identical(reference, call(spec.op, case.args), isa)
            torch.set_num_threads(1)
            try:
                assert_identical(reference, call(spec.op, case.args), f"{isa}, one thread")
            finally:
                torch.set_num_threads(threads)
    for a, b in zip(before, case.args):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b) or torch.equal(a.isnan(), b.isnan()), "the op wrote to an input"
    spec.check(case, reference)
    meta = call(spec.op, to_meta(case.args))
    for want, got in zip(outputs(reference), outputs(meta)):
        assert (got.shape, got.dtype) == (want.shape, want.dtype), "Meta kernel disagrees with CPU"
