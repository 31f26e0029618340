"""Builds qtorch's operator library against the installed torch.

The library (qtorch/_C) holds the torch-free kernels of csrc/kernels and the
torch glue of csrc/ops. It registers its ops with TORCH_LIBRARY and is loaded by
torch.ops.load_library, never imported as a Python module, so a C++ program can
load it too.

Build without isolation so the extension links the torch that is installed:
    pip install --no-build-isolation -e .
"""
import glob
import os

from setuptools import find_packages, setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def sources():
    kernels = sorted(glob.glob("csrc/kernels/**/*.cc", recursive=True))
    ops = sorted(glob.glob("csrc/ops/*.cpp"))
    return ops + kernels


# make test-sanitize builds a second copy of the library with QTORCH_SANITIZE=address,undefined
# (into build/sanitize, loaded through QTORCH_LIBRARY; see qtorch/_ops.py).
SANITIZE = os.environ.get("QTORCH_SANITIZE", "")
SANITIZE_FLAGS = ["-O1", "-g", "-fno-omit-frame-pointer", f"-fsanitize={SANITIZE}",
                  "-fno-sanitize-recover=all"] if SANITIZE else []

extension = CppExtension(
    name="qtorch._C",
    sources=sources(),
    include_dirs=[os.path.join(ROOT, "csrc", "kernels"), os.path.join(ROOT, "csrc", "ops")],
    # -fopenmp: at::parallel_for is a header template over OpenMP; without it the
    # pragma is dropped and ops run on one thread. libgomp.so.1 resolves to the copy
    # torch has already loaded, so there is one OpenMP runtime.
    extra_compile_args={"cxx": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno", "-fopenmp",
                                "-Wno-maybe-uninitialized"] + SANITIZE_FLAGS},
    extra_link_args=["-fopenmp"] + SANITIZE_FLAGS,
    # No libtorch_python: the library must load without Python.
    py_limited_api=True,
)

# Typed Python bindings of the ops for eager calls (csrc/python/op_bindings.cpp). They
# need libtorch_python, which the library above must not, so they are a module of their own.
op_bindings = CppExtension(
    name="qtorch._op_bindings",
    sources=["csrc/python/op_bindings.cpp"],
    extra_compile_args={"cxx": ["-O2"]},
)

setup(
    name="qtorch-int8",
    version="0.1.0",
    description="Int8 inference for PyTorch on CPUs: the eager quantization workflow on plain integer tensors",
    packages=find_packages(include=["qtorch", "qtorch.*"]),
    python_requires=">=3.9",
    install_requires=["torch>=2.4"],
    extras_require={"test": ["pytest", "hypothesis", "numpy"], "bench": ["fbgemm-gpu-cpu==1.8.0", "matplotlib"]},
    # The sanitized build (make test-sanitize) needs only the library: it runs under the normal bindings.
    ext_modules=[extension] if SANITIZE else [extension, op_bindings],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
