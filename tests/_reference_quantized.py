"""Test doubles of quantized modules that follow qtorch's module contract (qtorch/nn/quantized/
_module.py) in plain float arithmetic: dequantize, float op, quantize. They let the workflow be
tested independently of the kernels, and are passed to convert() as a custom mapping."""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from qtorch._ops import ops
from qtorch.nn.quantized._module import QuantizedModule


def _output_qparams(mod: nn.Module) -> Tuple[float, int]:
    scale, zero_point = mod.activation_post_process.calculate_qparams()
    return float(scale), int(zero_point)


def _fake_quantized_weight(mod: nn.Module) -> torch.Tensor:
    observer = getattr(mod, "weight_fake_quant", None)
    if observer is None:
        observer = mod.qconfig.weight()
    observer(mod.weight.detach())
    scale, zero_point = observer.calculate_qparams()
    weight = mod.weight.detach()
    if scale.numel() > 1:
        return torch.fake_quantize_per_channel_affine(weight, scale, zero_point.to(torch.int32), 0, -128, 127)
    return torch.fake_quantize_per_tensor_affine(weight, float(scale), int(zero_point), -128, 127)


class _Ref(QuantizedModule):
    # Plain nn.Module calls: these doubles never take QTensor arguments.
    __call__ = nn.Module.__call__


class RefQuantize(_Ref):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._finish(ops.quantize_per_tensor(x, self.scale, self.zero_point, torch.uint8))

    @classmethod
    def from_float(cls, mod: nn.Module) -> "RefQuantize":
        new = cls()
        new.scale, new.zero_point = _output_qparams(mod)
        return new


class RefDeQuantize(_Ref):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.dequantize_per_tensor(self._integer_input(x), self.input_scale, self.input_zero_point)

    @classmethod
    def from_float(cls, mod: nn.Module) -> "RefDeQuantize":
        return cls()


class _RefWeighted(_Ref):
    relu: bool

    def __init__(self, float_module: nn.Module, relu: bool) -> None:
        super().__init__()
        self.op = float_module
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_real = ops.dequantize_per_tensor(self._integer_input(x), self.input_scale, self.input_zero_point)
        y = self.op(x_real)
        if self.relu:
            y = F.relu(y)
        return self._finish(ops.quantize_per_tensor(y, self.scale, self.zero_point, torch.uint8))

    @classmethod
    def from_float(cls, mod: nn.Module) -> "_RefWeighted":
        relu = isinstance(mod, nn.Sequential) or type(mod).__name__.endswith("ReLU2d") or type(mod).__name__ == "LinearReLU"
        inner = mod[0] if isinstance(mod, nn.Sequential) else mod
        observed = mod if not isinstance(mod, nn.Sequential) else inner
        if not hasattr(observed, "qconfig"):
            observed.qconfig = mod.qconfig
        if isinstance(inner, nn.Conv2d):
            op = nn.Conv2d(inner.in_channels, inner.out_channels, inner.kernel_size, inner.stride, inner.padding,
                           inner.dilation, inner.groups, inner.bias is not None)
        else:
            op = nn.Linear(inner.in_features, inner.out_features, inner.bias is not None)
        op.weight = nn.Parameter(_fake_quantized_weight(observed if hasattr(observed, "weight_fake_quant") else inner))
        if inner.bias is not None:
            op.bias = nn.Parameter(inner.bias.detach().clone())
        new = cls(op, relu)
        new.scale, new.zero_point = _output_qparams(mod)
        return new


class RefLinear(_RefWeighted):
    pass


class RefConv2d(_RefWeighted):
    pass


class RefReLU(_Ref):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Output parameters are the input's (convert writes them): max(q, zero point).
        q = self._integer_input(x)
        return self._finish(torch.clamp(q, min=self.input_zero_point).to(torch.uint8))

    @classmethod
    def from_float(cls, mod: nn.Module) -> "RefReLU":
        new = cls()
        new.scale, new.zero_point = _output_qparams(mod)
        return new


class RefQFunctional(_Ref):
    """add / cat / mul with both inputs' parameters (set_operand_qparams)."""

    input_scales: List[float]
    input_zero_points: List[int]

    def __init__(self) -> None:
        super().__init__()
        self.input_scales = []
        self.input_zero_points = []

    def set_operand_qparams(self, scales: List[float], zero_points: List[int]) -> None:
        self.input_scales = [float(s) for s in scales]
        self.input_zero_points = [int(z) for z in zero_points]
        self.set_input_qparams(scales[0], zero_points[0])

    def _real(self, x: torch.Tensor, i: int) -> torch.Tensor:
        if x.is_floating_point():
            x = ops.quantize_per_tensor(x, self.input_scales[i], self.input_zero_points[i], torch.uint8)
        return ops.dequantize_per_tensor(x, self.input_scales[i], self.input_zero_points[i])

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        return self._finish(ops.quantize_per_tensor(y, self.scale, self.zero_point, torch.uint8))

    def add(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._out(self._real(x, 0) + self._real(y, 1))

    def add_relu(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._out(F.relu(self._real(x, 0) + self._real(y, 1)))

    def mul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._out(self._real(x, 0) * self._real(y, 1))

    def cat(self, xs: List[torch.Tensor], dim: int = 0) -> torch.Tensor:
        return self._out(torch.cat([self._real(x, i) for i, x in enumerate(xs)], dim=dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("QFunctional is called through its methods (add, cat, ...)")

    @classmethod
    def from_float(cls, mod: nn.Module) -> "RefQFunctional":
        new = cls()
        new.scale, new.zero_point = _output_qparams(mod)
        return new


def reference_mapping() -> dict:
    import torch.ao.nn.quantized as nnq_native

    import qtorch.nn.intrinsic as nni
    import qtorch.nn.intrinsic.qat as nniqat
    import qtorch.nn.qat as nnqat
    import qtorch.quantization as qq

    mapping = {
        qq.QuantStub: RefQuantize, qq.DeQuantStub: RefDeQuantize,
        nn.Linear: RefLinear, nnqat.Linear: RefLinear, nni.LinearReLU: RefLinear, nniqat.LinearReLU: RefLinear,
        nn.Conv2d: RefConv2d, nnqat.Conv2d: RefConv2d, nni.ConvReLU2d: RefConv2d, nniqat.ConvReLU2d: RefConv2d,
        nni.ConvBn2d: RefConv2d, nni.ConvBnReLU2d: RefConv2d, nniqat.ConvBn2d: RefConv2d, nniqat.ConvBnReLU2d: RefConv2d,
        nn.ReLU: RefReLU, nnq_native.FloatFunctional: RefQFunctional,
    }
    import torch.ao.quantization as tq
    import torch.ao.nn.intrinsic as tnni

    mapping.update({tq.QuantStub: RefQuantize, tq.DeQuantStub: RefDeQuantize, tnni.ConvReLU2d: RefConv2d,
                    tnni.LinearReLU: RefLinear})
    return mapping
