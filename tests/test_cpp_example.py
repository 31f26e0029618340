"""examples/cpp/run_model: a C++ program, no Python, runs a scripted qtorch model saved from
Python and gives Python's output bit for bit, or the eager model's error on bad input.

The program is built by `make cpp-example` (CMake against the torch wheel's libtorch,
QTORCH_BUILD_TORCH_PARTS=ON); these tests are skipped where it has not been built.
QTORCH_RUN_MODEL names another build of it.
"""
import os
import subprocess

import pytest
import torch

from _deploy_cases import MODEL_NAMES, ROOT, bad_inputs, convert, fresh_input, missing
from qtorch._ops import LIBRARY_PATH

RUN_MODEL = os.environ.get("QTORCH_RUN_MODEL", os.path.join(ROOT, "build", "torch", "run_model"))
# QTORCH_CMAKE_OPS_LIBRARY: the ops library CMake builds from the same sources
# (ninja -C build/torch qtorch_ops -> build/torch/libqtorch_ops.so), tested too when given.
# Not picked up by itself: a copy left from older sources would lack newer ops.
OPS_LIBRARIES = [LIBRARY_PATH] + [p for p in [os.environ.get("QTORCH_CMAKE_OPS_LIBRARY")] if p]

pytestmark = [
    pytest.mark.skipif(not os.path.exists(RUN_MODEL),
                       reason=f"{RUN_MODEL} is not built (make test-cpp-example builds it)"),
    pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning"),
]


@pytest.fixture(params=MODEL_NAMES)
def name(request) -> str:
    reason = missing(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


def run_model(model_path: str, input_path: str, output_path: str, *flags: str,
              library: str = LIBRARY_PATH) -> subprocess.CompletedProcess:
    return subprocess.run([RUN_MODEL, library, model_path, input_path, output_path, *flags],
                          capture_output=True, text=True, timeout=300)


def _save(tmp_path, name: str, seed: int):
    model, example = convert(name, seed)
    scripted = torch.jit.script(model)
    model_path = str(tmp_path / f"{name}.pt")
    torch.jit.save(scripted, model_path)
    return model, scripted, example, model_path


@pytest.mark.parametrize("library", OPS_LIBRARIES, ids=os.path.basename)
def test_cpp_output_equals_python_bit_for_bit(name, library, tmp_path, _fresh_seed):
    model, scripted, example, model_path = _save(tmp_path, name, _fresh_seed)
    x = fresh_input(example)
    torch.save(x, tmp_path / "input.pt")
    done = run_model(model_path, str(tmp_path / "input.pt"), str(tmp_path / "output.pt"), "--threads", "2",
                     library=library)
    assert done.returncode == 0, done.stderr
    output = torch.load(tmp_path / "output.pt")
    with torch.no_grad():
        assert torch.equal(output, scripted(x))
        assert torch.equal(output, model(x))


def test_cpp_bad_input_raises_the_eager_error(name, tmp_path, _fresh_seed):
    model, _, example, model_path = _save(tmp_path, name, _fresh_seed)
    for kind, bad in bad_inputs(example).items():
        with pytest.raises(Exception) as eager, torch.no_grad():
            model(bad)
        message = str(eager.value).strip().splitlines()[0]
        torch.save(bad, tmp_path / f"{kind}.pt")
        done = run_model(model_path, str(tmp_path / f"{kind}.pt"), str(tmp_path / "output.pt"))
        assert done.returncode == 1, f"{kind}: run_model exited with {done.returncode}: {done.stderr}"
        assert "run_model: error: " in done.stderr
        assert message in done.stderr, f"{kind}: eager says {message!r}; run_model says {done.stderr}"


def test_cpp_usage_and_missing_files(tmp_path):
    done = subprocess.run([RUN_MODEL], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "usage: run_model" in done.stderr
    done = run_model(str(tmp_path / "absent.pt"), str(tmp_path / "absent-input.pt"), str(tmp_path / "out.pt"))
    assert done.returncode == 1 and "run_model: error: " in done.stderr
    done = subprocess.run([RUN_MODEL, str(tmp_path / "no-library.so"), "m.pt", "i.pt", "o.pt"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "cannot load the qtorch ops library" in done.stderr
