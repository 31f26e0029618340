"""quantize / dequantize of float32 activations, per tensor.

At 1x1024 the work is ~0.3 us and the call is the rest: the time of qtorch's Python
entry (qtorch._ops.ops, typed bindings) against native torch's generated bindings.
"""
from typing import List

import torch

from benchmarks.harness import Case, Contender
from qtorch._ops import ops


def cases(quick: bool) -> List[Case]:
    out = []
    for shape in [(1, 64, 112, 112), (1, 1024)]:
        x = torch.randn(shape)
        scale, zp = 0.05, 128
        q = ops.quantize_per_tensor(x, scale, zp, torch.uint8)
        nq = torch.quantize_per_tensor(x, scale, zp, torch.quint8)
        numel = x.numel()
        label = "x".join(map(str, shape))
        out.append(Case("quantize", f"quantize {label}", [
            Contender("qtorch", lambda x=x: ops.quantize_per_tensor(x, scale, zp, torch.uint8)),
            Contender("native", lambda x=x: torch.quantize_per_tensor(x, scale, zp, torch.quint8)),
        ], bytes=5 * numel, quick=True))
        out.append(Case("quantize", f"dequantize {label}", [
            Contender("qtorch", lambda q=q: ops.dequantize_per_tensor(q, scale, zp)),
            Contender("native", lambda nq=nq: nq.dequantize()),
        ], bytes=5 * numel, quick=True))
    return out
