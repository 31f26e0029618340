"""The one place that loads qtorch's compiled operator library."""
import glob
import importlib.machinery
import os

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
ops = torch.ops.qtorch

# Resolve the ISA now, so a bad QTORCH_ISA fails at import with its message.
ops.kernel_isa()
