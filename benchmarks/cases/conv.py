"""Quantized conv2d, qtorch vs native torch: every distinct conv layer shape of ResNet-18 and
MobileNetV2 at batch 1, 224x224, on inputs quantized as in those models (ReLU outputs, zero
point 0, in ResNet-18 after the stem). Native runs its fast path (channels_last quantized
input) on each engine (x86, fbgemm, onednn); the ratio is native time / qtorch time (> 1:
qtorch faster).

Part of `python -m benchmarks`; standalone, with a per-thread-count summary (geometric mean and
worst ratio):  python -m benchmarks.cases.conv [--threads 1 2] [--filter dw] [--repeats 15]
"""
import argparse
import math
import sys
from typing import List, NamedTuple

import torch

import qtorch
from benchmarks.harness import NATIVE_ENGINES, Case, Contender, native_contenders, quiet_native, time_case
from qtorch._ops import ops


class ConvShape(NamedTuple):
    model: str
    size: int         # input height = width
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    groups: int

    @property
    def padding(self) -> int:
        return self.kernel // 2

    @property
    def name(self) -> str:
        kind = "dw" if self.groups > 1 and self.groups == self.in_channels else f"conv{self.kernel}x{self.kernel}"
        return (f"{self.model}:{kind} {self.in_channels}->{self.out_channels} @{self.size} "
                f"s{self.stride}")


def resnet18_shapes() -> List[ConvShape]:
    s = [ConvShape("resnet18", 224, 3, 64, 7, 2, 1)]
    s.append(ConvShape("resnet18", 56, 64, 64, 3, 1, 1))
    for size, cin, cout in ((56, 64, 128), (28, 128, 256), (14, 256, 512)):
        s.append(ConvShape("resnet18", size, cin, cout, 3, 2, 1))
        s.append(ConvShape("resnet18", size // 2, cout, cout, 3, 1, 1))
        s.append(ConvShape("resnet18", size, cin, cout, 1, 2, 1))
    return s


def mobilenet_v2_shapes() -> List[ConvShape]:
    shapes = [ConvShape("mobilenet_v2", 224, 3, 32, 3, 2, 1)]
    size, cin = 112, 32
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]
    for t, c, n, s in settings:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            if t != 1:
                shapes.append(ConvShape("mobilenet_v2", size, cin, hidden, 1, 1, 1))
            shapes.append(ConvShape("mobilenet_v2", size, hidden, hidden, 3, stride, hidden))
            size = (size + 2 - 3) // stride + 1
            shapes.append(ConvShape("mobilenet_v2", size, hidden, c, 1, 1, 1))
            cin = c
    shapes.append(ConvShape("mobilenet_v2", size, cin, 1280, 1, 1, 1))
    unique: Dict[tuple, ConvShape] = {}
    for shape in shapes:
        unique.setdefault(tuple(shape[1:]), shape)
    return list(unique.values())


def make_case(shape: ConvShape, quick: bool = False) -> Case:
    torch.manual_seed(0)
    cin, cout, k, stride, pad, groups = (shape.in_channels, shape.out_channels, shape.kernel, shape.stride,
                                         shape.padding, shape.groups)
    # What each layer reads in its model: ReLU outputs (zero point 0) in ResNet-18 after the
    # stem; signed values elsewhere (the image, MobileNetV2's linear bottlenecks).
    post_relu = shape.model == "resnet18" and shape.in_channels > 3
    x_float = torch.rand(1, cin, shape.size, shape.size) * (3 if post_relu else 4) - (0 if post_relu else 1)
    sx, zx = (3 / 255, 0) if post_relu else (4 / 255, 64)
    x = ops.quantize_per_tensor(x_float, sx, zx, torch.uint8).contiguous(memory_format=torch.channels_last)
    w_float = torch.randn(cout, cin // groups, k, k) * 0.1
    ws = w_float.abs().amax(dim=(1, 2, 3)) / 127
    wz = torch.zeros(cout, dtype=torch.int32)
    w = ops.quantize_per_channel(w_float, ws, wz, 0, torch.int8)
    bias = torch.randn(cout) * 0.1
    sy, zy = 0.05, 0
    packed, sums = ops.conv2d_prepack(w, wz, groups)
    args = (x, sx, zx, packed, sums, ws, wz, bias, [k, k], [stride] * 2, [pad] * 2, [1, 1], groups, sy, zy)

    def make_native():
        # Native's fast path: channels_last quantized input, weights prepacked for the current engine.
        qx = torch._make_per_tensor_quantized_tensor(x, sx, zx)
        qw = torch._make_per_channel_quantized_tensor(w, ws.double(), wz.long(), 0)
        mod = torch.ao.nn.intrinsic.quantized.ConvReLU2d(cin, cout, k, stride, pad, 1, groups, True)
        mod.set_weight_bias(qw, bias)
        mod.scale, mod.zero_point = sy, zy
        return lambda: mod(qx)

    out_size = (shape.size + 2 * pad - k) // stride + 1
    macs = out_size * out_size * cout * (cin // groups) * k * k
    return Case("conv", shape.name, [Contender("qtorch", lambda: ops.conv2d_relu(*args))] +
                native_contenders(make_native), ops=2.0 * macs, quick=quick)


# The CI subset (a direct 1x1 GEMM layer).
QUICK = {"mobilenet_v2:conv1x1 144->24 @56 s1"}


def all_shapes() -> List[ConvShape]:
    return resnet18_shapes() + mobilenet_v2_shapes()


def cases(quick: bool) -> List[Case]:
    return [make_case(s, s.name in QUICK) for s in all_shapes() if s.name in QUICK or not quick]


def main(argv: List[str]) -> None:
    """Standalone summary per thread count: geometric mean and worst of best-native / qtorch."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--filter", default="")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    shapes = [s for s in all_shapes() if args.filter in s.name]
    print(f"qtorch ISA {qtorch.kernel_isa()}; native engines {', '.join(NATIVE_ENGINES)}")
    for threads in args.threads:
        ratios = []
        print(f"\n{threads} thread(s)  {'':34s}{'qtorch us':>10} " + " ".join(f"{e:>9}" for e in NATIVE_ENGINES) +
              "   best/qtorch")
        for shape in shapes:
            with quiet_native():
                case = make_case(shape)
            result = time_case(case, threads, args.repeats, 0.01)
            ratio = result.ratio(result.best_native)
            ratios.append((ratio, case.name))
            natives = " ".join(f"{result.timings['native-' + e].median_us:9.1f}" for e in NATIVE_ENGINES)
            print(f"{case.name:46s} {result.timings['qtorch'].median_us:10.1f} {natives}   {ratio:6.2f}", flush=True)
        geo = math.exp(sum(math.log(r) for r, _ in ratios) / len(ratios))
        worst = min(ratios)
        print(f"{threads} thread(s): geometric mean {geo:.2f}, worst {worst[0]:.2f} ({worst[1]})")


if __name__ == "__main__":
    main(sys.argv[1:])
