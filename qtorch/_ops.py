"""The one place that loads qtorch's compiled operator library."""
import glob
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))


def _library_path() -> str:
    # QTORCH_LIBRARY loads another build of the same sources (make test-sanitize's).
    if os.environ.get("QTORCH_LIBRARY"):
        return os.environ["QTORCH_LIBRARY"]
    for suffix in importlib.machinery.EXTENSION_SUFFIXES + [".abi3.so", ".so"]:
        matches = glob.glob(os.path.join(_HERE, "_C" + suffix))
        if matches:
            return matches[0]
    raise ImportError(
        f"qtorch's compiled library (qtorch/_C*.so) was not found in {_HERE}; "
        "build it with `pip install --no-build-isolation -e .` or `make build`"
    )


LIBRARY_PATH = _library_path()
torch.ops.load_library(LIBRARY_PATH)

# Python calls the ops through their typed bindings (csrc/python/op_bindings.cpp): the
# operators of torch.ops.qtorch, called through the dispatcher without torch.ops' ~1 us of
# argument matching per call. TorchScript compiles each binding to its qtorch:: operator,
# and torch.compile / torch.export put that operator in their graphs.
from qtorch import _op_bindings as ops  # noqa: E402


def _bindings():
    return [getattr(ops, name) for name in dir(ops) if not name.startswith("_") and callable(getattr(ops, name))]


def _allow_bindings_in_dynamo_graphs() -> None:
    for binding in _bindings():
        torch.compiler.allow_in_graph(binding)


class _OnDynamoImport(importlib.abc.MetaPathFinder):
    """Registers the bindings with torch._dynamo once something imports it.

    Importing torch._dynamo just to register them would add ~1 s to `import qtorch`.
    """

    def find_spec(self, fullname, path, target=None):
        if fullname != "torch._dynamo":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _allow_bindings_in_dynamo_graphs()

        spec.loader.exec_module = exec_then_register
        return spec


for _binding in _bindings():
    torch.jit._builtins._register_builtin(_binding, f"qtorch::{_binding.__name__}")
if "torch._dynamo" in sys.modules:
    _allow_bindings_in_dynamo_graphs()
else:
    sys.meta_path.insert(0, _OnDynamoImport())

# Resolve the ISA now, so a bad QTORCH_ISA fails at import with its message.
ops.kernel_isa()
