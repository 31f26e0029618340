"""qtorch._ops.ops: the typed bindings through which qtorch's Python calls its operators.

They must be the operators of torch.ops.qtorch under another entry: the same results and
errors (tests/test_fuzz.py compares them on broken arguments too), and, under TorchScript,
torch.compile and torch.export, the qtorch:: operators themselves.
"""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from _deploy_cases import convert, fresh_input
from _op_specs import SPECS, call, call_binding, registered_ops
from qtorch._ops import ops as bindings

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")


def outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def test_every_operator_has_a_binding_and_every_binding_an_operator():
    names = {name for name in dir(bindings) if not name.startswith("_")}
    assert names == set(registered_ops())


@pytest.mark.parametrize("spec", [spec for spec in SPECS if not spec.stateful], ids=lambda spec: spec.op)
@given(data=st.data())
def test_binding_returns_what_the_operator_returns(spec, data):
    case = spec.draw(data.draw)
    want, got = outputs(call(spec.op, case.args)), outputs(call_binding(spec.op, case.args))
    assert len(want) == len(got)
    for a, b in zip(want, got):
        if not isinstance(a, torch.Tensor):
            assert a == b
            continue
        assert (a.dtype, a.shape, a.stride()) == (b.dtype, b.shape, b.stride())
        assert torch.equal(a, b) or torch.equal(a.isnan(), b.isnan()) and torch.equal(a[~a.isnan()], b[~b.isnan()])


def test_schema_defaults_and_keywords_carry_over():
    x = torch.randint(0, 256, (1, 2, 3, 3), dtype=torch.uint8)
    assert torch.equal(bindings.upsample_nearest2d(x, [6, 6]), torch.ops.qtorch.upsample_nearest2d(x, [6, 6]))
    assert torch.equal(bindings.upsample_nearest2d(input=x, output_size=[5, 4], scales_w=None),
                       torch.ops.qtorch.upsample_nearest2d(x, [5, 4]))
    with pytest.raises(TypeError):
        bindings.upsample_nearest2d(x)


def test_errors_are_the_operators_python_exceptions():
    q = torch.randint(0, 256, (4,), dtype=torch.uint8)
    with pytest.raises(ValueError, match="scale must be a positive finite"):
        bindings.dequantize_per_tensor(q, -1.0, 0)
    with pytest.raises(TypeError, match="input must hold quantized values"):
        bindings.dequantize_per_tensor(q.float(), 1.0, 0)
    with pytest.raises(TypeError, match="incompatible function arguments"):
        bindings.dequantize_per_tensor("q", 1.0, 0)


def test_meta_tensors_reach_the_fake_kernels():
    x = torch.empty(7, 40, device="meta")
    q = bindings.quantize_per_tensor(x, 0.1, 3, torch.uint8)
    assert q.device.type == "meta" and q.dtype == torch.uint8 and q.shape == (7, 40)


@pytest.fixture(scope="module")
def mlp():
    return convert("mlp", 0)


def node_kinds(block):
    return {kind for node in block.nodes() for kind in [node.kind()] + [k for b in node.blocks() for k in node_kinds(b)]}


def test_torchscript_compiles_the_bindings_to_the_operators(mlp):
    model, example = mlp
    kinds = node_kinds(torch.jit.script(model).inlined_graph)
    assert "qtorch::linear_relu" in kinds and not any(k.startswith("prim::Python") for k in kinds)


def test_torch_compile_traces_the_bindings_without_graph_breaks(mlp):
    model, example = mlp
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = fresh_input(example)
    assert torch.equal(compiled(x), model(x))


def test_strict_torch_export_holds_the_operators(mlp):
    model, example = mlp
    exported = torch.export.export(model, (example,), strict=True)
    targets = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    assert "qtorch.linear_relu.default" in targets
    x = fresh_input(example)
    assert torch.equal(exported.module()(x), model(x))
