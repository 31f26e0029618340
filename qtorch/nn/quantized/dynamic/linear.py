"""Dynamically quantized Linear: float in, float out, weights int8 (or float16).

Activations are quantized per call from their min/max range (the classic
dynamic Linear: uint8, ``reduce_range`` halving the range as it does by
default), multiplied by the packed int8 weights, and the int32 results are
scaled back to float with the bias in the kernel's epilogue. With float16
weights the kernel converts them to float32 and accumulates in float32.
"""
from typing import Any, Optional

import torch

from qtorch._dtypes import _TORCH_QUANTIZED
from qtorch._ops import ops
from qtorch.nn.quantized.linear import Linear as _StaticLinear
from qtorch.nn.quantized._weights import quantize_weight


def _default_dynamic_weight_observer() -> Any:
    try:
        from qtorch.quantization import default_dynamic_qconfig  # type: ignore[attr-defined]
    except ImportError:
        from torch.ao.quantization.qconfig import default_dynamic_qconfig
    return default_dynamic_qconfig.weight()


class Linear(_StaticLinear):
    r"""Mirrors ``torch.ao.nn.quantized.dynamic.Linear``: ``dtype`` torch.qint8 or torch.float16 weights."""

    _FLOAT_MODULE: Any = (torch.nn.Linear, torch.nn.modules.linear.NonDynamicallyQuantizableLinear)

    reduce_range: bool
    is_float16: bool

    def __init__(self, in_features: int, out_features: int, bias_: bool = True, dtype: Any = torch.qint8) -> None:
        dtype = _TORCH_QUANTIZED.get(dtype, dtype)
        if dtype not in (torch.int8, torch.float16):
            raise ValueError(f"dynamic Linear supports dtype qtorch.qint8 (torch.int8) or torch.float16, got {dtype}")
        self.is_float16 = dtype == torch.float16
        super().__init__(in_features, out_features, bias_, torch.qint8)
        # The classic module quantizes activations with reduce_range=True.
        self.reduce_range = True
        # Float16 weights, packed [ceil(N/16), K, 16] (the int8 buffers stay empty then).
        self.register_buffer("packed_weight_fp16", torch.empty(0, dtype=torch.float16))
        if self.is_float16:
            self.set_weight_bias(torch.zeros(out_features, in_features), torch.zeros(out_features) if bias_ else None)

    @property
    def dtype(self) -> Any:
        return torch.float16 if self.is_float16 else torch.qint8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_float16:
            return ops.linear_dynamic_fp16(x, self.packed_weight_fp16, self.out_features, self.bias_, self._relu)
        return ops.linear_dynamic(x, self.packed_weight, self.col_sums, self.in_features, self.bias_,
                                  self.weight_scales, self.weight_zero_points, self.reduce_range, self._relu)

    def set_weight_bias(self, weight: Any, bias: Optional[torch.Tensor]) -> None:
        if getattr(self, "is_float16", False) and isinstance(weight, torch.Tensor) and weight.is_floating_point():
            if weight.dim() != 2 or weight.shape[1] != self.in_features:
                raise ValueError(f"weight must have shape [out_features, {self.in_features}], got {list(weight.shape)}")
            if bias is not None:
                bias = bias.detach().float().contiguous()
                if bias.shape != (weight.shape[0],):
                    raise ValueError(f"bias must have shape [{weight.shape[0]}], got {list(bias.shape)}")
            self.out_features = int(weight.shape[0])
            self.packed_weight_fp16 = ops.linear_prepack_fp16(weight.detach())
            self.packed_weight = torch.empty(0, dtype=torch.int8)
            self.col_sums = torch.empty(0, dtype=torch.int32)
            self.bias_ = bias
            return
        super().set_weight_bias(weight, bias)

    def weight(self) -> Any:
        if self.is_float16:
            return ops.linear_unpack_fp16(self.packed_weight_fp16, self.out_features).float()
        return super().weight()

    def extra_repr(self) -> str:
        qscheme = "float16" if self.is_float16 else str(self._qscheme())
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype={self.dtype}, qscheme={qscheme}"

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "is_float16"] = torch.tensor(self.is_float16)
        destination[prefix + "reduce_range"] = torch.tensor(self.reduce_range)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: Any, strict: bool,
                              missing_keys: Any, unexpected_keys: Any, error_msgs: Any) -> None:
        for name in ("is_float16", "reduce_range"):
            if prefix + name in state_dict:
                setattr(self, name, bool(state_dict.pop(prefix + name).item()))
        if prefix + "packed_weight_fp16" in state_dict:
            self.packed_weight_fp16 = state_dict.pop(prefix + "packed_weight_fp16").detach().clone()
        out_features = self.out_features
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if self.is_float16:
            self.out_features = out_features

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "Linear":
        """A dynamic quantized Linear from a float Linear (its ``qconfig`` names the weight observer)."""
        float_modules = cls._FLOAT_MODULE + (torch.ao.nn.intrinsic.LinearReLU,)
        if type(mod) not in float_modules:
            names = ", ".join(m.__name__ for m in float_modules)
            raise TypeError(f"{cls.__module__}.{cls.__name__}.from_float only works for {names}, got {type(mod)}")
        relu = isinstance(mod, torch.nn.Sequential)
        linear = mod[0] if relu else mod
        qconfig = getattr(mod, "qconfig", None)
        observer = qconfig.weight() if qconfig is not None and qconfig.weight is not None \
            else _default_dynamic_weight_observer()
        dtype = _TORCH_QUANTIZED.get(observer.dtype, observer.dtype)
        if dtype not in (torch.int8, torch.float16):
            raise ValueError(f"the weight observer's dtype must be torch.qint8 or torch.float16, got {dtype}")
        qlinear = cls(linear.in_features, linear.out_features, bias_=linear.bias is not None, dtype=dtype)
        if dtype == torch.float16:
            qlinear.set_weight_bias(linear.weight.detach().float(), linear.bias)
        else:
            observer(linear.weight)
            qlinear.set_weight_bias(quantize_weight(linear.weight, observer), linear.bias)
        qlinear._relu = relu
        return qlinear
