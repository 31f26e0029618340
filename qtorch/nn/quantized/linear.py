"""Quantized Linear: uint8 activations x int8 weights, weights packed once.

The weight is held as plain-tensor buffers in the blocked layout of the GEMM
kernels (``packed_weight`` [ceil(N/16), ceil(K/4), 16, 4] int8 and its
``col_sums`` int32 [N]) with its quantization parameters (``weight_scales``
and ``weight_zero_points``: one value per tensor, or one per output channel),
so ``state_dict``, TorchScript and ``torch.export`` carry them as they are.
"""
from typing import Any, Optional, Tuple

import torch

from qtorch._dtypes import _TORCH_QUANTIZED
from qtorch._ops import ops
from qtorch.nn.quantized._module import QuantizedModule
from qtorch.nn.quantized._weights import quantize_weight, weight_parts

class Linear(QuantizedModule):
    r"""A quantized linear layer: ``y = quantize(dequantize(x) @ dequantize(W).T + bias)``.

    Mirrors ``torch.ao.nn.quantized.Linear``. ``forward`` takes a uint8 tensor
    ``[..., in_features]`` quantized with ``input_scale``/``input_zero_point``
    (or float32 on a float edge) and returns uint8 with ``scale``/``zero_point``
    (float32 when ``float_output`` is set).
    """

    _version = 1
    _FLOAT_MODULE: Any = (torch.nn.Linear, torch.nn.modules.linear.NonDynamicallyQuantizableLinear)
    _CONSTANTS = {**QuantizedModule._CONSTANTS, "in_features": int, "out_features": int}
    _ASSIGNED_BUFFERS = ("packed_weight", "col_sums", "weight_scales", "weight_zero_points", "bias_")
    _OPTIONAL_BUFFERS = ("bias_",)

    in_features: int
    out_features: int
    _relu: bool

    def __init__(self, in_features: int, out_features: int, bias_: bool = True, dtype: Any = torch.qint8) -> None:
        super().__init__()
        if _TORCH_QUANTIZED.get(dtype, dtype) != torch.int8:
            raise ValueError(f"{type(self).__name__} supports dtype qtorch.qint8 (torch.int8) weights, got {dtype}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self._relu = False
        self.register_buffer("packed_weight", torch.empty(0, dtype=torch.int8))
        self.register_buffer("col_sums", torch.empty(0, dtype=torch.int32))
        self.register_buffer("weight_scales", torch.ones(1))
        self.register_buffer("weight_zero_points", torch.zeros(1, dtype=torch.int32))
        self.register_buffer("bias_", torch.zeros(out_features) if bias_ else None)
        weight = torch.zeros(out_features, in_features, dtype=torch.int8)
        self.set_weight_bias((weight, torch.ones(1), torch.zeros(1, dtype=torch.int32)),
                             torch.zeros(out_features) if bias_ else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_input_qparams:
            raise RuntimeError("quantized Linear has no input quantization parameters: convert() sets them, "
                               "or call it with a qtorch.QTensor")
        x = self._integer_input(x)
        if self._relu:
            return ops.linear_relu(x, self.packed_weight, self.col_sums, self.in_features, self.bias_,
                                   self.input_scale, self.input_zero_point, self.weight_scales,
                                   self.weight_zero_points, self.scale, self.zero_point, self.float_output)
        return ops.linear(x, self.packed_weight, self.col_sums, self.in_features, self.bias_, self.input_scale,
                          self.input_zero_point, self.weight_scales, self.weight_zero_points, self.scale,
                          self.zero_point, self.float_output)

    # ----- weights -----
    def set_weight_bias(self, weight: Any, bias: Optional[torch.Tensor]) -> None:
        """Packs ``weight`` (a quantized qint8 tensor: qtorch.QTensor or torch's) and sets ``bias`` (float or None)."""
        data, scales, zero_points = weight_parts(weight)
        if data.dim() != 2 or data.shape[1] != self.in_features:
            raise ValueError(f"weight must have shape [out_features, {self.in_features}], got {list(data.shape)}")
        if bias is not None:
            bias = bias.detach().float().contiguous()
            if bias.shape != (data.shape[0],):
                raise ValueError(f"bias must have shape [{data.shape[0]}], got {list(bias.shape)}")
        packed, col_sums = ops.linear_prepack(data)
        self.out_features = int(data.shape[0])
        self.packed_weight = packed
        self.col_sums = col_sums
        self.weight_scales = scales.detach().to(torch.float32).reshape(-1).contiguous()
        self.weight_zero_points = zero_points.detach().to(torch.int32).reshape(-1).contiguous()
        self.bias_ = bias

    def _weight_int8(self) -> torch.Tensor:
        return ops.linear_unpack(self.packed_weight, self.out_features, self.in_features)

    def weight(self) -> Any:
        """The weight as a qtorch.QTensor (unpacked on demand)."""
        from qtorch._qtensor import QTensor

        data = self._weight_int8()
        if self.weight_scales.numel() > 1:
            return QTensor(data, self.weight_scales.clone(), self.weight_zero_points.clone(), axis=0)
        return QTensor(data, float(self.weight_scales[0]), int(self.weight_zero_points[0]))

    def bias(self) -> Optional[torch.Tensor]:
        return self.bias_

    def _qscheme(self) -> Any:
        if self.weight_scales.numel() > 1:
            return torch.per_channel_affine
        return torch.per_tensor_affine

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale}, "
                f"zero_point={self.zero_point}, qscheme={self._qscheme()}")

    # ----- conversion -----
    @classmethod
    def _weight_and_activation_observers(cls, mod: Any) -> Tuple[Any, Any, Any]:
        """(float Linear holding the weight, weight observer, activation observer) of an observed module."""
        if hasattr(mod, "weight_fake_quant"):  # QAT modules carry their own weight fake quant
            return mod, mod.weight_fake_quant, mod.activation_post_process
        float_modules = cls._FLOAT_MODULE if isinstance(cls._FLOAT_MODULE, tuple) else (cls._FLOAT_MODULE,)
        if type(mod) not in float_modules:
            names = ", ".join(m.__name__ for m in float_modules)
            raise TypeError(f"{cls.__module__}.{cls.__name__}.from_float only works for {names}, got {type(mod)}")
        if not hasattr(mod, "qconfig") or mod.qconfig is None:
            raise ValueError("the float module must have a qconfig")
        if not hasattr(mod, "activation_post_process"):
            raise ValueError("the float module must have an activation_post_process (run prepare() and calibrate)")
        activation = mod.activation_post_process
        linear = mod[0] if isinstance(mod, torch.nn.Sequential) else mod
        weight_observer = linear.weight_fake_quant if hasattr(linear, "weight_fake_quant") else mod.qconfig.weight()
        return linear, weight_observer, activation

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "Linear":
        """A quantized Linear from an observed float Linear (``mod.qconfig``, ``mod.activation_post_process``)."""
        linear, weight_observer, activation = cls._weight_and_activation_observers(mod)
        if not use_precomputed_fake_quant:
            weight_observer(linear.weight)
        q, scales, zero_points = quantize_weight(linear.weight, weight_observer)
        act_scale, act_zp = activation.calculate_qparams()
        qlinear = cls(linear.in_features, linear.out_features, linear.bias is not None)
        qlinear.set_weight_bias((q, scales, zero_points), linear.bias)
        qlinear.scale = float(act_scale)
        qlinear.zero_point = int(act_zp)
        return qlinear
