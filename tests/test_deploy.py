"""Deploying converted models: TorchScript (script, save, load in a fresh process), eager
persistence (state_dict, torch.save of the whole model, deepcopy), machine independence
across kernel paths, and the errors a deployed model raises on bad input.

The models are those of tests/_deploy_cases.py; the C++ runner is tested in test_cpp_example.py.
"""
import copy
import io
import os
import subprocess
import sys
from typing import Dict, List, Tuple

import pytest
import torch
from torch import nn

import qtorch
from _deploy_cases import MODEL_NAMES, ROOT, bad_inputs, convert, fresh_input, missing

# torch 2.13 deprecates TorchScript in favour of torch.export; deploying through it is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

_CONVERTED: Dict[str, Tuple[nn.Module, torch.Tensor]] = {}
_SCRIPTED: Dict[str, torch.jit.ScriptModule] = {}


@pytest.fixture(params=MODEL_NAMES)
def name(request) -> str:
    reason = missing(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture
def converted(name: str, _fresh_seed: int) -> Tuple[nn.Module, torch.Tensor]:
    """(converted model, example input), converted once per test session (conversion is slow)."""
    if name not in _CONVERTED:
        _CONVERTED[name] = convert(name, _fresh_seed)
    return _CONVERTED[name]


@pytest.fixture
def scripted(name: str, converted) -> torch.jit.ScriptModule:
    if name not in _SCRIPTED:
        _SCRIPTED[name] = torch.jit.script(converted[0])
    return _SCRIPTED[name]


def _all_nodes(block) -> List[torch._C.Node]:
    nodes = []
    for node in block.nodes():
        nodes.append(node)
        for inner in node.blocks():
            nodes += _all_nodes(inner)
    return nodes


# ----- TorchScript -----

def test_scripted_graph_calls_only_qtorch_and_aten_ops(scripted):
    kinds = {node.kind() for node in _all_nodes(scripted.inlined_graph)}
    foreign = sorted(k for k in kinds if k.split("::")[0] not in ("aten", "qtorch", "prim"))
    assert not foreign, f"ops outside qtorch:: and aten::: {foreign}"
    python_calls = sorted(k for k in kinds if k in ("prim::PythonOp", "prim::CallFunction", "prim::CallMethod"))
    assert not python_calls, f"calls left in the inlined graph: {python_calls}"
    assert any(k.startswith("qtorch::") for k in kinds), "no qtorch op in the graph"


def test_scripted_output_equals_eager(isa, converted, scripted):
    model, example = converted
    for _ in range(2):
        x = fresh_input(example)
        with torch.no_grad():
            expected = model(x)
            assert torch.equal(scripted(x), expected)


def test_scripted_save_and_load_in_memory(converted, scripted):
    model, example = converted
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = fresh_input(example)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


# ----- eager persistence -----

def test_state_dict_loads_into_a_freshly_converted_model(name, converted, _fresh_seed):
    model, example = converted
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain tensors only: no pickled code
    other, _ = convert(name, _fresh_seed + 1)  # same architecture, other weights and parameters
    other.load_state_dict(state)
    x = fresh_input(example)
    with torch.no_grad():
        assert torch.equal(other(x), model(x))
        assert torch.equal(torch.jit.script(other)(x), model(x))


def test_torch_save_and_load_of_the_whole_model(converted):
    model, example = converted
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = fresh_input(example)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_deepcopy_is_equal_and_independent(converted):
    model, example = converted
    clone = copy.deepcopy(model)
    x = fresh_input(example)
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(clone(x), expected)
        for module in clone.modules():  # changing the copy leaves the original alone
            for buffer in module.buffers(recurse=False):
                buffer.zero_()
            if hasattr(module, "scale"):
                module.scale = 1000.0
        assert torch.equal(model(x), expected)


# ----- bad input: the scripted model raises what the eager model raises -----

def _error(fn, x) -> BaseException:
    with pytest.raises(Exception) as info:
        with torch.no_grad():
            fn(x)
    return info.value


@pytest.mark.parametrize("kind", ["dtype", "shape"])
def test_bad_input_raises_the_same_clear_error_scripted(converted, scripted, kind):
    model, example = converted
    bad = bad_inputs(example)[kind]
    eager = _error(model, bad)
    script = _error(scripted, bad)
    message = str(eager).strip().splitlines()[0]
    assert message, f"eager error without a message: {eager!r}"
    assert message in str(script), f"eager: {eager!r}\nscripted: {script}"


# ----- fresh processes and machine independence -----

_RUNNER = r"""
import sys
import torch
import qtorch  # registers the qtorch ops the scripted graphs call

jobs = torch.load(sys.argv[1], weights_only=False)
for kind, model_path, input_path, output_path in jobs:
    model = torch.jit.load(model_path) if kind == "script" else torch.load(model_path, weights_only=False)
    with torch.no_grad():
        torch.save(model(torch.load(input_path)), output_path)
print(qtorch.kernel_isa())
"""


def _run_fresh_process(jobs, jobs_path: str, isa: str) -> None:
    torch.save(jobs, jobs_path)
    env = dict(os.environ, QTORCH_ISA=isa, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", _RUNNER, jobs_path], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [isa]


def test_saved_models_run_identically_under_every_isa_in_fresh_processes(tmp_path, _fresh_seed):
    """Each model converted and saved (scripted, and whole eager) under every kernel path
    loads in a fresh process under every other path and gives the eager output exactly."""
    isas = qtorch.supported_isas()
    names = [n for n in MODEL_NAMES if not missing(n)]
    jobs, expected = [], {}
    for name in names:
        state = None
        for convert_isa in isas:
            with qtorch.kernel_isa_scope(convert_isa):
                model, example = convert(name, _fresh_seed)
                # The packed weights do not depend on the path that packed them.
                this_state = model.state_dict()
                if state is not None:
                    assert state.keys() == this_state.keys()
                    for key in state:
                        assert torch.equal(state[key], this_state[key]), f"{name}: {key} differs under {convert_isa}"
                state = this_state
                x = fresh_input(example)
                with torch.no_grad():
                    expected[(name, convert_isa)] = model(x)
            stem = str(tmp_path / f"{name}-{convert_isa}")
            torch.save(x, stem + "-input.pt")
            torch.jit.save(torch.jit.script(model), stem + "-script.pt")
            torch.save(model, stem + "-eager.pt")
            for kind in ("script", "eager"):
                jobs.append((kind, f"{stem}-{kind}.pt", stem + "-input.pt", (name, convert_isa, kind)))
    for run_isa in isas:
        run_jobs = [(kind, m, i, str(tmp_path / f"out-{'-'.join(key)}-{run_isa}.pt")) for kind, m, i, key in jobs]
        _run_fresh_process(run_jobs, str(tmp_path / f"jobs-{run_isa}.pt"), run_isa)
        for (kind, _, _, (name, convert_isa, _)), (_, _, _, output) in zip(jobs, run_jobs):
            assert torch.equal(torch.load(output), expected[(name, convert_isa)]), \
                f"{name} ({kind}) converted under {convert_isa}, run under {run_isa}"
