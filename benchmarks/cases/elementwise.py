"""Quantized add, add_relu, cat, pooling and activations (issue 5 shapes), qtorch vs native torch.

Pooling cases run qtorch on each memory format against native on both formats
(the ratio is against native's best: channels_last for max_pool2d, avg_pool2d and
adaptive_avg_pool2d on these shapes).
"""
from typing import Callable, List

import torch

from benchmarks.harness import Case, Contender
from qtorch._ops import ops


def _native(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    return torch._make_per_tensor_quantized_tensor(q, scale, zero_point)


def _formats(x: torch.Tensor):
    return {"nchw": x.contiguous(), "channels_last": x.contiguous(memory_format=torch.channels_last)}


def _pool_cases(name: str, shape, qtorch_fn: Callable, native_fn: Callable, in_bytes: int, out_bytes: int,
                quick: bool) -> List[Case]:
    q = torch.randint(0, 256, shape, dtype=torch.uint8)
    nq = _native(q, 0.05, 128)
    natives = [Contender(f"native-{fmt}", lambda t=t: native_fn(t)) for fmt, t in _formats(nq).items()]
    return [Case("elementwise", f"{name} ({fmt})", [Contender("qtorch", lambda t=t: qtorch_fn(t))] + natives,
                 bytes=in_bytes + out_bytes, quick=quick and fmt == "channels_last")
            for fmt, t in _formats(q).items()]


def cases(quick: bool) -> List[Case]:
    out: List[Case] = []
    shape = (1, 64, 56, 56)
    n = 64 * 56 * 56
    a, b = torch.randint(0, 256, shape, dtype=torch.uint8), torch.randint(0, 256, shape, dtype=torch.uint8)
    (sa, za), (sb, zb), (s, z) = (0.02, 128), (0.03, 120), (0.04, 100)
    na, nb = _native(a, sa, za), _native(b, sb, zb)
    out.append(Case("elementwise", "add 1x64x56x56", [
        Contender("qtorch", lambda: ops.add(a, sa, za, b, sb, zb, s, z)),
        Contender("native", lambda: torch.ops.quantized.add(na, nb, s, z)),
    ], bytes=3 * n, quick=True))
    out.append(Case("elementwise", "add_relu 1x64x56x56", [
        Contender("qtorch", lambda: ops.add_relu(a, sa, za, b, sb, zb, s, z)),
        Contender("native", lambda: torch.ops.quantized.add_relu(na, nb, s, z)),
    ], bytes=3 * n))
    # torch.cat on quantized tensors: the output takes the first input's parameters.
    for fmt in ("nchw", "channels_last"):
        ta, tb = _formats(a)[fmt], _formats(b)[fmt]
        nta, ntb = _formats(na)[fmt], _formats(nb)[fmt]
        out.append(Case("elementwise", f"cat dim 1 of 2x 1x64x56x56 ({fmt})", [
            Contender("qtorch", lambda ta=ta, tb=tb: ops.cat([ta, tb], [sa, sb], [za, zb], 1, sa, za)),
            Contender("native", lambda nta=nta, ntb=ntb: torch.cat([nta, ntb], 1)),
        ], bytes=4 * n, quick=fmt == "nchw"))

    out += _pool_cases("max_pool2d 3x3 s2 p1 1x64x112x112", (1, 64, 112, 112),
                       lambda t: ops.max_pool2d(t, [3, 3], [2, 2], [1, 1], [1, 1], False),
                       lambda t: torch.nn.functional.max_pool2d(t, 3, 2, 1), 64 * 112 * 112, 64 * 56 * 56, True)
    out += _pool_cases("avg_pool2d 2x2 1x64x56x56", shape,
                       lambda t: ops.avg_pool2d(t, [2, 2], [2, 2], [0, 0], False, True, None, 0.05, 128, 0.05, 128),
                       lambda t: torch.nn.functional.avg_pool2d(t, 2), n, n // 4, True)
    out += _pool_cases("adaptive_avg_pool2d 1x1 1x1280x7x7", (1, 1280, 7, 7),
                       lambda t: ops.adaptive_avg_pool2d(t, [1, 1], 0.05, 128, 0.05, 128),
                       lambda t: torch.nn.functional.adaptive_avg_pool2d(t, 1), 1280 * 49, 1280, True)

    big = (1, 64, 112, 112)
    x = torch.randint(0, 256, big, dtype=torch.uint8)
    nx = _native(x, 0.05, 128)
    out.append(Case("elementwise", "relu 1x64x112x112", [
        Contender("qtorch", lambda: ops.relu(x, 0.05, 128, 0.05, 128)),
        Contender("native", lambda: torch.relu(nx)),
    ], bytes=2 * x.numel(), quick=True))
    out.append(Case("elementwise", "hardswish 1x64x112x112", [
        Contender("qtorch", lambda: ops.hardswish(x, 0.05, 128, 0.04, 100)),
        Contender("native", lambda: torch.ops.quantized.hardswish(nx, 0.04, 100)),
    ], bytes=2 * x.numel(), quick=True))
    return out
