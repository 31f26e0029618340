"""Timing qtorch against native torch: same process, interleaved, medians, ratios.

A benchmark case is a set of contenders doing the same work: "qtorch", native
torch's quantized op under one or more engines ("native-x86", "native-fbgemm",
"native-onednn"), optionally "float32", and optionally other libraries'
implementations (any other name, e.g. "fbgemm_gpu": reported with their own
ratio, never counted as native). Repeats rotate through the
contenders so that noise (other processes, frequency changes) hits all of them
alike; the result is each contender's median time and the ratio
best-native / qtorch (> 1 means qtorch is faster).
"""
import contextlib
import dataclasses
import statistics
import time
import warnings
from typing import Callable, Dict, List, Optional

import torch

NATIVE_ENGINES = [e for e in ("x86", "fbgemm", "onednn") if e in torch.backends.quantized.supported_engines]


@dataclasses.dataclass
class Contender:
    name: str
    fn: Callable[[], object]
    engine: Optional[str] = None  # torch.backends.quantized.engine to run native ops under


@dataclasses.dataclass
class Case:
    group: str  # e.g. "quantize", "linear", "conv", "elementwise", "model"
    name: str
    contenders: List[Contender]
    ops: float = 0.0  # multiply-adds x2 per call, for GOPS
    bytes: float = 0.0  # bytes moved per call, for GB/s
    quick: bool = False  # part of the --quick CI subset


@dataclasses.dataclass
class Timing:
    median_us: float
    min_us: float
    max_us: float


@dataclasses.dataclass
class Result:
    group: str
    name: str
    threads: int
    timings: Dict[str, Timing]
    ops: float
    bytes: float

    @property
    def best_native(self) -> Optional[str]:
        natives = [n for n in self.timings if n.startswith("native")]
        return min(natives, key=lambda n: self.timings[n].median_us) if natives else None

    def ratio(self, contender: str) -> float:
        """contender time / qtorch time: above 1, qtorch is faster."""
        return self.timings[contender].median_us / self.timings["qtorch"].median_us


@contextlib.contextmanager
def native_engine(engine: Optional[str]):
    if engine is None:
        yield
        return
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


@contextlib.contextmanager
def quiet_native():
    """Native quantized ops warn that their dtypes are deprecated; benchmarks call them on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# Per contender before its first sample. Three calls were not enough: a layer run after
# the other cases started ~40% slower for its first ~50 calls (depthwise 32x112x112, 1
# thread: 214 us, then 158 us), which moved whole medians.
WARM_UP_S = 0.05


def _warm_up(fn: Callable[[], object], seconds: float) -> None:
    """Lazy initialisation, caches and the allocator's state: at least 3 calls and `seconds`."""
    end = time.perf_counter() + seconds
    for _ in range(3):
        fn()
    while time.perf_counter() < end:
        fn()


def _calls_per_sample(fn: Callable[[], object], target_s: float) -> int:
    start = time.perf_counter()
    fn()
    elapsed = max(time.perf_counter() - start, 1e-7)
    return max(1, min(10000, int(target_s / elapsed)))


def time_case(case: Case, threads: int, repeats: int, sample_s: float) -> Result:
    torch.set_num_threads(threads)
    samples: Dict[str, List[float]] = {c.name: [] for c in case.contenders}
    with quiet_native(), torch.inference_mode():
        calls = {}
        for c in case.contenders:
            with native_engine(c.engine):
                _warm_up(c.fn, WARM_UP_S)
                calls[c.name] = _calls_per_sample(c.fn, sample_s)
        for r in range(repeats):
            order = case.contenders[r % len(case.contenders):] + case.contenders[:r % len(case.contenders)]
            for c in order:
                with native_engine(c.engine):
                    n = calls[c.name]
                    start = time.perf_counter_ns()
                    for _ in range(n):
                        c.fn()
                    samples[c.name].append((time.perf_counter_ns() - start) / n / 1e3)
    timings = {name: Timing(statistics.median(s), min(s), max(s)) for name, s in samples.items()}
    return Result(case.group, case.name, threads, timings, case.ops, case.bytes)


def native_contenders(make: Callable[[], Callable[[], object]], name: str = "native") -> List[Contender]:
    """One contender per native engine; `make` builds the callable under that engine (prepacking included)."""
    out = []
    with quiet_native():
        for engine in NATIVE_ENGINES:
            with native_engine(engine):
                out.append(Contender(f"{name}-{engine}", make(), engine))
    return out
