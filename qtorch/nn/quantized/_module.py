"""The contract every quantized module follows (DESIGN.md, the central decision).

Quantization parameters are constants of the module, never carried by tensors
(and saved in its state_dict with its buffers):

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
from typing import Any, Dict, Tuple

import torch

from qtorch._ops import ops
from qtorch._qtensor import QTensor, call_with_qtensors


class QuantizedModule(torch.nn.Module):
    # Constants saved in state_dict, name -> type; subclasses extend the dict.
    _CONSTANTS: Dict[str, type] = {"scale": float, "zero_point": int, "input_scale": float, "input_zero_point": int,
                                   "has_input_qparams": bool, "float_output": bool}
    # Buffers whose shape or presence differs between modules of one class (packed
    # layouts, per-channel parameters, a bias): loading assigns them rather than
    # copying into the existing ones. Absent optional ones load as None.
    _ASSIGNED_BUFFERS: Tuple[str, ...] = ()
    _OPTIONAL_BUFFERS: Tuple[str, ...] = ()

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

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for name, kind in self._CONSTANTS.items():
            destination[prefix + name] = torch.tensor(getattr(self, name), dtype=torch.float64 if kind is float else None)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: Any, strict: bool,
                              missing_keys: Any, unexpected_keys: Any, error_msgs: Any) -> None:
        for name, kind in self._CONSTANTS.items():
            if prefix + name in state_dict:
                setattr(self, name, kind(state_dict.pop(prefix + name).item()))
            elif strict:
                missing_keys.append(prefix + name)
        for name in self._ASSIGNED_BUFFERS:
            if prefix + name in state_dict:
                setattr(self, name, state_dict.pop(prefix + name).detach().clone())
            elif name in self._OPTIONAL_BUFFERS:
                setattr(self, name, None)
            elif strict:
                missing_keys.append(prefix + name)
        # The assigned buffers are gone from state_dict; the rest loads as usual.
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict and not self._ASSIGNED_BUFFERS,
                                      missing_keys, unexpected_keys, error_msgs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], QTensor):
            return call_with_qtensors(self, super().__call__, *args, **kwargs)
        return super().__call__(*args, **kwargs)
