"""Quantized Linear, static (uint8 -> uint8) and dynamic (float -> float, int8
weights), against native torch's quantized linear ops under each engine.

Both sides call the op directly with weights prepacked once (qtorch's packed
buffers; native's LinearPackedParams), so module overhead is out of the
measurement. Shapes: M in {1, 16, 64, 256} rows and (K, N) in {(1024, 1024),
(768, 3072), (3072, 768)}, i.e. transformer-sized layers from single-token
decoding to batches.
"""
from typing import List

import torch

from benchmarks.harness import NATIVE_ENGINES, Case, Contender, native_contenders, native_engine, quiet_native
from qtorch._ops import ops

SHAPES = [(1024, 1024), (768, 3072), (3072, 768)]
ROWS = [1, 16, 64, 256]


def _weights(n: int, k: int):
    w = torch.randint(-127, 128, (n, k), dtype=torch.int8)
    scales = torch.rand(n) * 0.01 + 0.001
    zero_points = torch.zeros(n, dtype=torch.int32)
    bias = torch.randn(n)
    return w, scales, zero_points, bias


def _native_packed(w, scales, bias):
    qw = torch._make_per_channel_quantized_tensor(w, scales.double(), torch.zeros(w.shape[0], dtype=torch.long), 0)
    return torch.ops.quantized.linear_prepack(qw, bias)


def static_case(m: int, k: int, n: int, quick: bool) -> Case:
    w, scales, zps, bias = _weights(n, k)
    packed, col_sums = ops.linear_prepack(w)
    x_scale, x_zp, out_scale, out_zp = 0.02, 3, 0.5, 100
    x = torch.randint(0, 256, (m, k), dtype=torch.uint8)

    def make_native():
        params = _native_packed(w, scales, bias)
        xq = torch._make_per_tensor_quantized_tensor(x, x_scale, x_zp)
        return lambda: torch.ops.quantized.linear(xq, params, out_scale, out_zp)

    contenders = [Contender("qtorch", lambda: ops.linear(x, packed, col_sums, k, bias, x_scale, x_zp, scales, zps,
                                                          out_scale, out_zp))]
    contenders += native_contenders(make_native)
    return Case("linear", f"static M={m} K={k} N={n}", contenders, ops=2.0 * m * n * k, quick=quick)


def dynamic_case(m: int, k: int, n: int, quick: bool) -> Case:
    w, scales, zps, bias = _weights(n, k)
    packed, col_sums = ops.linear_prepack(w)
    x = torch.randn(m, k)

    def make_native():
        params = _native_packed(w, scales, bias)
        return lambda: torch.ops.quantized.linear_dynamic(x, params, True)

    contenders = [Contender("qtorch", lambda: ops.linear_dynamic(x, packed, col_sums, k, bias, scales, zps, True))]
    contenders += native_contenders(make_native)
    w_float = w.float() * scales[:, None]
    contenders.append(Contender("float32", lambda: torch.nn.functional.linear(x, w_float, bias)))
    return Case("linear", f"dynamic M={m} K={k} N={n}", contenders, ops=2.0 * m * n * k, quick=quick)


def fp16_case(m: int, k: int, n: int) -> Case:
    w, bias, x = torch.randn(n, k), torch.randn(n), torch.randn(m, k)
    packed = ops.linear_prepack_fp16(w)

    def make_native():
        params = torch.ops.quantized.linear_prepack_fp16(w, bias)
        return lambda: torch.ops.quantized.linear_dynamic_fp16(x, params)

    # Native float16 weights exist under the FBGEMM-based engines only.
    contenders = [Contender("qtorch", lambda: ops.linear_dynamic_fp16(x, packed, n, bias))]
    for engine in NATIVE_ENGINES:
        if engine != "onednn":
            with quiet_native(), native_engine(engine):
                contenders.append(Contender(f"native-{engine}", make_native(), engine))
    contenders.append(Contender("float32", lambda: torch.nn.functional.linear(x, w, bias)))
    return Case("linear", f"dynamic fp16 M={m} K={k} N={n}", contenders, ops=2.0 * m * n * k)


def cases(quick: bool) -> List[Case]:
    out = []
    for k, n in SHAPES:
        for m in ROWS:
            out.append(static_case(m, k, n, quick=(k, n, m) in {(1024, 1024, 1), (1024, 1024, 64)}))
            out.append(dynamic_case(m, k, n, quick=(k, n, m) == (768, 3072, 64)))
    out += [fp16_case(m, 1024, 1024) for m in (1, 64)]
    return out
