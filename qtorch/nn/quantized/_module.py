"""The contract every quantized module follows (DESIGN.md, the central decision).

Quantization parameters are constants of the module, never carried by tensors:

- ``scale``, ``zero_point``: the output's parameters (as in the classic API).
- ``input_scale``, ``input_zero_point``: the parameters of the module's integer
  input, written by ``convert()`` from the calibration map (``has_input_qparams``
  tells whether they are set).
- ``float_output``: set by ``convert()`` when a consumer of the output needs real
  values; the module then returns dequantized float32 (fused into its kernel
  where the op allows it).

A module's forward takes a plain integer tensor (or float32 on a float edge,
which it quantizes with its input parameters) and returns a plain tensor, so it
runs the same eagerly and under TorchScript. Called eagerly with a
``qtorch.QTensor`` it uses that tensor's parameters when it holds none, and
returns a QTensor.
"""
from typing import Any

import torch

from qtorch._ops import ops
from qtorch._qtensor import QTensor, call_with_qtensors


class QuantizedModule(torch.nn.Module):
    scale: float
    zero_point: int
    input_scale: float
    input_zero_point: int
    has_input_qparams: bool
    float_output: bool

    def __init__(self) -> None:
        super().__init__()
        self.scale = 1.0
        self.zero_point = 0
        self.input_scale = 1.0
        self.input_zero_point = 0
        self.has_input_qparams = False
        self.float_output = False

    def set_input_qparams(self, scale: float, zero_point: int) -> None:
        self.input_scale = float(scale)
        self.input_zero_point = int(zero_point)
        self.has_input_qparams = True

    def _integer_input(self, x: torch.Tensor) -> torch.Tensor:
        """The uint8 input: quantized here when the incoming edge is float."""
        if x.is_floating_point():
            return ops.quantize_per_tensor(x, self.input_scale, self.input_zero_point, torch.uint8)
        return x

    def _finish(self, y: torch.Tensor) -> torch.Tensor:
        """Dequantizes the uint8 output when the outgoing edge is float."""
        if self.float_output and not y.is_floating_point():
            return ops.dequantize_per_tensor(y, self.scale, self.zero_point)
        return y

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], QTensor):
            return call_with_qtensors(self, super().__call__, *args, **kwargs)
        return super().__call__(*args, **kwargs)
