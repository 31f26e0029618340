"""FloatFunctional (float ops with an output observer, for calibration) and QFunctional (the same calls on
quantized integers, parameters held as module constants), like torch.ao.nn.quantized's."""
from typing import Any, List, Tuple

import torch
from torch import Tensor

from qtorch._ops import ops
from qtorch._qtensor import QTensor
from qtorch.nn.quantized._module import QuantizedModule


class FloatFunctional(torch.nn.Module):
    """add, add_scalar, mul, mul_scalar, cat and add_relu in float. Results of add, mul, cat and add_relu
    pass through ``activation_post_process`` (a placeholder Identity until prepare() puts an observer
    there); the scalar ops need no observer (their output parameters follow from the input's)."""

    def __init__(self) -> None:
        super().__init__()
        self.activation_post_process = torch.nn.Identity()

    def forward(self, x):
        raise RuntimeError("FloatFunctional is not intended to use the 'forward'. Please use the underlying "
                           "operation")

    def add(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(torch.add(x, y))

    def add_scalar(self, x: Tensor, y: float) -> Tensor:
        return torch.add(x, y)

    def mul(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(torch.mul(x, y))

    def mul_scalar(self, x: Tensor, y: float) -> Tensor:
        return torch.mul(x, y)

    def cat(self, x: List[Tensor], dim: int = 0) -> Tensor:
        return self.activation_post_process(torch.cat(x, dim=dim))

    def add_relu(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activation_post_process(torch.nn.functional.relu(torch.add(x, y)))


def add_scalar_qparams(scale: float, zero_point: int, other: float) -> Tuple[float, int]:
    """The classic output parameters of quantized add_scalar on quint8: the zero point shifts by
    round(other / scale) while it stays in 0..255, else the scale widens with the zero point at the edge."""
    shift = int(round(other / scale))
    shifted = zero_point - shift
    if shifted < 0:
        return (255.0 - shifted) / 255.0 * scale, 0
    if shifted > 255:
        return float(shifted) / 255.0 * scale, 255
    return scale, shifted


def mul_scalar_qparams(scale: float, zero_point: int, other: float) -> Tuple[float, int]:
    """The classic output parameters of quantized mul_scalar on quint8: the scale takes |other|, a negative
    factor mirrors the zero point, zero gives (1.0, 0)."""
    if other > 0.0:
        return other * scale, zero_point
    if other == 0.0:
        return 1.0, 0
    return -other * scale, 255 - zero_point


class QFunctional(QuantizedModule):
    """The FloatFunctional calls on uint8 integers.

    ``scale``/``zero_point`` are the output parameters of add, mul, cat and add_relu (from the observer
    of the FloatFunctional it replaces); add_scalar and mul_scalar derive theirs from the input's, as the
    classic kernels do. The operands' parameters are constants too: ``input_scales[i]`` and
    ``input_zero_points[i]`` for operand i (x, y; or each tensor of cat), falling back to
    ``input_scale``/``input_zero_point`` for operands without their own (``set_input_qparams`` sets one
    pair for all, ``set_operand_qparams`` one per operand). Called eagerly with qtorch.QTensor operands,
    it uses their parameters and returns a QTensor.
    """

    input_scales: List[float]
    input_zero_points: List[int]

    def __init__(self) -> None:
        super().__init__()
        self.input_scales = []
        self.input_zero_points = []
        self.activation_post_process = torch.nn.Identity()

    def set_input_qparams(self, scale: float, zero_point: int) -> None:
        super().set_input_qparams(scale, zero_point)
        self.input_scales = []
        self.input_zero_points = []

    def set_operand_qparams(self, scales: List[float], zero_points: List[int]) -> None:
        if len(scales) != len(zero_points) or len(scales) == 0:
            raise ValueError(f"scales and zero_points must be non-empty and of equal length, got {len(scales)} "
                             f"and {len(zero_points)}")
        super().set_input_qparams(scales[0], zero_points[0])
        self.input_scales = [float(s) for s in scales]
        self.input_zero_points = [int(z) for z in zero_points]

    def extra_repr(self) -> str:
        return f"scale={self.scale}, zero_point={self.zero_point}"

    # The per-operand parameters travel in the state_dict too.
    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "input_scales"] = torch.tensor(self.input_scales, dtype=torch.float64)
        destination[prefix + "input_zero_points"] = torch.tensor(self.input_zero_points, dtype=torch.int64)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: Any, strict: bool,
                              missing_keys: Any, unexpected_keys: Any, error_msgs: Any) -> None:
        if prefix + "input_scales" in state_dict and prefix + "input_zero_points" in state_dict:
            self.input_scales = [float(s) for s in state_dict.pop(prefix + "input_scales").tolist()]
            self.input_zero_points = [int(z) for z in state_dict.pop(prefix + "input_zero_points").tolist()]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x):
        raise RuntimeError("QFunctional is not intended to use the 'forward'. Please use the underlying operation")

    # ----- operands -----
    def _operand(self, x: Tensor, i: int) -> Tuple[Tensor, float, int]:
        """Operand i as uint8 with its parameters (float operands on a float edge are quantized here)."""
        if not self.has_input_qparams:
            raise RuntimeError("QFunctional holds no input quantization parameters: convert() sets them, "
                               "or call it with qtorch.QTensor operands")
        scale, zero_point = self.input_scale, self.input_zero_point
        if i < len(self.input_scales):
            scale, zero_point = self.input_scales[i], self.input_zero_points[i]
        if x.is_floating_point():
            x = ops.quantize_per_tensor(x, scale, zero_point, torch.uint8)
        return x, scale, zero_point

    @torch.jit.unused
    def _with_qtensors(self, name: str, operands: List[Any], other: float = 0.0, dim: int = 0) -> Tensor:
        """Eager call with QTensor operands: their parameters for this call, a QTensor result."""
        saved = (self.input_scale, self.input_zero_point, self.has_input_qparams, self.input_scales,
                 self.input_zero_points)
        for i, q in enumerate(operands):
            if not isinstance(q, QTensor) or q.qscheme() != torch.per_tensor_affine or q.dtype != torch.uint8:
                raise TypeError(f"QFunctional.{name}: operand {i} must be a per-tensor quint8 qtorch.QTensor "
                                f"like the others, got {type(q).__name__}")
        self.set_operand_qparams([float(q.q_scale()) for q in operands], [int(q.q_zero_point()) for q in operands])
        try:
            data = [q._data for q in operands]
            if name == "cat":
                out = self.cat(data, dim)
            elif name in ("add_scalar", "mul_scalar"):
                out = getattr(self, name)(data[0], other)
            else:
                out = getattr(self, name)(data[0], data[1])
            scale, zero_point = self.scale, self.zero_point
            if name == "add_scalar":
                scale, zero_point = add_scalar_qparams(self.input_scale, self.input_zero_point, other)
            elif name == "mul_scalar":
                scale, zero_point = mul_scalar_qparams(self.input_scale, self.input_zero_point, other)
        finally:
            (self.input_scale, self.input_zero_point, self.has_input_qparams, self.input_scales,
             self.input_zero_points) = saved
        return QTensor(out, scale, zero_point)

    # ----- the calls -----
    def add(self, x: Tensor, y: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            if isinstance(x, QTensor) or isinstance(y, QTensor):
                return self._with_qtensors("add", [x, y])
        a, sa, za = self._operand(x, 0)
        b, sb, zb = self._operand(y, 1)
        return self._finish(ops.add(a, sa, za, b, sb, zb, self.scale, self.zero_point))

    def add_relu(self, x: Tensor, y: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            if isinstance(x, QTensor) or isinstance(y, QTensor):
                return self._with_qtensors("add_relu", [x, y])
        a, sa, za = self._operand(x, 0)
        b, sb, zb = self._operand(y, 1)
        return self._finish(ops.add_relu(a, sa, za, b, sb, zb, self.scale, self.zero_point))

    def mul(self, x: Tensor, y: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            if isinstance(x, QTensor) or isinstance(y, QTensor):
                return self._with_qtensors("mul", [x, y])
        a, sa, za = self._operand(x, 0)
        b, sb, zb = self._operand(y, 1)
        return self._finish(ops.mul(a, sa, za, b, sb, zb, self.scale, self.zero_point))

    def add_scalar(self, x: Tensor, y: float) -> Tensor:
        if not torch.jit.is_scripting():
            if isinstance(x, QTensor):
                return self._with_qtensors("add_scalar", [x], other=float(y))
        a, sa, za = self._operand(x, 0)
        scale, zero_point = add_scalar_qparams(sa, za, y)
        out = ops.add_scalar(a, sa, za, y, scale, zero_point)
        if self.float_output:
            return ops.dequantize_per_tensor(out, scale, zero_point)
        return out

    def mul_scalar(self, x: Tensor, y: float) -> Tensor:
        if not torch.jit.is_scripting():
            if isinstance(x, QTensor):
                return self._with_qtensors("mul_scalar", [x], other=float(y))
        a, sa, za = self._operand(x, 0)
        scale, zero_point = mul_scalar_qparams(sa, za, y)
        out = ops.mul_scalar(a, sa, za, y, scale, zero_point)
        if self.float_output:
            return ops.dequantize_per_tensor(out, scale, zero_point)
        return out

    def cat(self, x: List[Tensor], dim: int = 0) -> Tensor:
        if not torch.jit.is_scripting():
            if any(isinstance(t, QTensor) for t in x):
                return self._with_qtensors("cat", list(x), dim=dim)
        data: List[Tensor] = []
        scales: List[float] = []
        zero_points: List[int] = []
        for i, t in enumerate(x):
            q, s, z = self._operand(t, i)
            data.append(q)
            scales.append(s)
            zero_points.append(z)
        return self._finish(ops.cat(data, scales, zero_points, dim, self.scale, self.zero_point))

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "QFunctional":
        """From a FloatFunctional (ours or torch.ao's) whose activation_post_process observed its outputs."""
        observer = getattr(mod, "activation_post_process", None)
        if observer is None or not hasattr(observer, "calculate_qparams"):
            raise ValueError(f"{type(mod).__name__} has no observer in activation_post_process: run prepare() and "
                             "calibrate before converting")
        scale, zero_point = observer.calculate_qparams()
        out = cls()
        out.scale = float(scale)
        out.zero_point = int(zero_point)
        return out
