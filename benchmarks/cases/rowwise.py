"""Row-wise 8-bit quantization and dequantization of a 4096x256 float32 tensor (issue 7).

Three ways to quantize each row with its own parameters:
  qtorch      quantize_per_row_dynamic: per-row range, the classic dynamic parameters
              (uint8 scale and integer zero point), quantized in one pass per row;
  native      torch: per-row aminmax, the parameters in tensor ops, quantize_per_channel(axis 0);
  fbgemm_gpu  fbgemm-gpu's CPU build (pip install fbgemm-gpu-cpu==1.8.0, the `bench` extra):
              FloatToFused8BitRowwiseQuantized, which stores each row's float scale and bias
              (min, not widened to hold 0) after its 256 bytes. Skipped when fbgemm_gpu is not installed.
Dequantization reads what each produced. The ratio column is native/qtorch; the fbgemm_gpu
peer has its own ratio (report.py's "other peers").
"""
from typing import List

import torch

from benchmarks.harness import Case, Contender
from qtorch._ops import ops

SHAPE = (4096, 256)


def fbgemm_gpu_ops():
    """torch.ops.fbgemm with the row-wise ops, or None when fbgemm_gpu is missing or does not load."""
    try:
        import fbgemm_gpu  # noqa: F401  (registers torch.ops.fbgemm)

        fbgemm = torch.ops.fbgemm
        fbgemm.FloatToFused8BitRowwiseQuantized  # noqa: B018  (resolves the op or raises)
        return fbgemm
    except (ImportError, OSError, AttributeError, RuntimeError):
        return None


def native_quantize_rows(x: torch.Tensor) -> torch.Tensor:
    """Per-row uint8 quantization in torch ops: each row's range widened to hold 0, scale over 255 steps,
    the zero point mapping the minimum to 0 (the classic parameters, without their tiny-scale rules)."""
    # amin/amax: torch.aminmax(dim=1) is ~20x slower on this shape.
    lo, hi = x.amin(1).clamp(max=0), x.amax(1).clamp(min=0)
    scale = ((hi - lo) / 255).clamp(min=6.1e-5)
    zero_point = (-lo / scale).round().clamp(0, 255).to(torch.int64)
    return torch.quantize_per_channel(x, scale, zero_point, 0, torch.quint8)


def cases(quick: bool) -> List[Case]:
    x = torch.randn(SHAPE) * torch.exp(torch.randn(SHAPE[0], 1))
    label = "x".join(map(str, SHAPE))
    q, scales, zero_points = ops.quantize_per_row_dynamic(x, torch.uint8)
    nq = native_quantize_rows(x)
    quantize = [
        Contender("qtorch", lambda: ops.quantize_per_row_dynamic(x, torch.uint8)),
        Contender("native", lambda: native_quantize_rows(x)),
    ]
    dequantize = [
        Contender("qtorch", lambda: ops.dequantize_per_channel(q, scales, zero_points, 0)),
        Contender("native", lambda: nq.dequantize()),
    ]
    fbgemm = fbgemm_gpu_ops()
    if fbgemm is not None:
        fused = fbgemm.FloatToFused8BitRowwiseQuantized(x)
        quantize.append(Contender("fbgemm_gpu", lambda: fbgemm.FloatToFused8BitRowwiseQuantized(x)))
        dequantize.append(Contender("fbgemm_gpu", lambda: fbgemm.Fused8BitRowwiseQuantizedToFloat(fused)))
    numel = x.numel()
    return [
        Case("quantize", f"quantize per row (dynamic) {label}", quantize, bytes=5 * numel),
        Case("quantize", f"dequantize per row {label}", dequantize, bytes=5 * numel),
    ]
