"""Which kernel path runs: reported, and forceable for tests and benchmarks."""
import contextlib
from typing import Iterator, List

from qtorch._ops import ops


def kernel_isa() -> str:
    """The instruction-set path the kernels use (QTORCH_ISA or the best the CPU runs)."""
    return ops.kernel_isa()


def supported_isas() -> List[str]:
    """Paths this CPU can run, slowest first."""
    return list(ops.supported_isas())


def set_kernel_isa(isa: str) -> None:
    """Forces a path for the whole process; ValueError if the CPU cannot run it."""
    ops.set_kernel_isa(isa)


@contextlib.contextmanager
def kernel_isa_scope(isa: str) -> Iterator[None]:
    """Runs a block on one path, then restores the previous one."""
    previous = kernel_isa()
    set_kernel_isa(isa)
    try:
        yield
    finally:
        set_kernel_isa(previous)
