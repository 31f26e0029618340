"""state_dict support for module constants (floats, ints, bools held as attributes)."""
from typing import Any, Dict

import torch

from qtorch.nn.quantized._module import QuantizedModule

# The constants every QuantizedModule holds (DESIGN.md: parameters are module constants).
QUANTIZED_MODULE_CONSTANTS: Dict[str, type] = {"scale": float, "zero_point": int, "input_scale": float,
                                               "input_zero_point": int, "has_input_qparams": bool,
                                               "float_output": bool}


class ConstantsInStateDict(QuantizedModule):
    """A QuantizedModule whose ``_CONSTANTS`` (name -> float/int/bool) travel in its state_dict."""

    _CONSTANTS: Dict[str, type] = QUANTIZED_MODULE_CONSTANTS

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for name, kind in self._CONSTANTS.items():
            value = getattr(self, name)
            destination[prefix + name] = torch.tensor(value, dtype=torch.float64 if kind is float else None)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: Any, strict: bool,
                              missing_keys: Any, unexpected_keys: Any, error_msgs: Any) -> None:
        for name, kind in self._CONSTANTS.items():
            if prefix + name in state_dict:
                setattr(self, name, kind(state_dict.pop(prefix + name).item()))
            elif strict:
                missing_keys.append(prefix + name)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
