"""Transformer encoders whose feed-forward Linears are dynamically quantized.

``nn.TransformerEncoderLayer`` and ``nn.TransformerEncoder`` have a fused fast path that
reads ``linear1.weight``, ``linear2.bias``, ... as float tensors. Once dynamic quantization
has put quantized Linears there (whose ``weight()`` and ``bias()`` are methods, as in the
classic API) that path can no longer be taken, and TorchScript, which compiles every
branch, cannot compile the module at all. These subclasses are the same modules (same
submodules, attributes and state_dict keys) running the float modules' general path.
"""
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.transformer import _detect_is_causal_mask, _get_seq_len


def _same_module_as(cls: Any, mod: nn.Module) -> nn.Module:
    """``mod``'s submodules and attributes under class ``cls`` (a subclass of type(mod))."""
    new = cls.__new__(cls)
    new.__dict__.update(mod.__dict__)
    for registry in ("_modules", "_parameters", "_buffers"):  # not shared with ``mod``
        setattr(new, registry, dict(getattr(mod, registry)))
    return new


class TransformerEncoderLayer(nn.TransformerEncoderLayer):
    r"""``nn.TransformerEncoderLayer`` with dynamically quantized ``linear1``/``linear2``."""

    def forward(self, src: Tensor, src_mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        src_key_padding_mask = F._canonical_mask(mask=src_key_padding_mask, mask_name="src_key_padding_mask",
                                                 other_type=F._none_or_dtype(src_mask), other_name="src_mask",
                                                 target_type=src.dtype)
        src_mask = F._canonical_mask(mask=src_mask, mask_name="src_mask", other_type=None, other_name="",
                                     target_type=src.dtype, check_other=False)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal=is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal=is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    @classmethod
    def from_float(cls, mod: nn.TransformerEncoderLayer) -> "TransformerEncoderLayer":
        """The same layer (its Linears quantized already, or still float) without the fast path."""
        if not isinstance(mod, nn.TransformerEncoderLayer):
            raise TypeError(f"{cls.__module__}.{cls.__name__}.from_float needs an nn.TransformerEncoderLayer, "
                            f"got {type(mod).__name__}")
        return _same_module_as(cls, mod)  # type: ignore[return-value]


class TransformerEncoder(nn.TransformerEncoder):
    r"""``nn.TransformerEncoder`` whose layers have dynamically quantized Linears."""

    def forward(self, src: Tensor, mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
                is_causal: Optional[bool] = None) -> Tensor:
        src_key_padding_mask = F._canonical_mask(mask=src_key_padding_mask, mask_name="src_key_padding_mask",
                                                 other_type=F._none_or_dtype(mask), other_name="mask",
                                                 target_type=src.dtype)
        mask = F._canonical_mask(mask=mask, mask_name="mask", other_type=None, other_name="", target_type=src.dtype,
                                 check_other=False)
        batch_first = self.layers[0].self_attn.batch_first
        seq_len = _get_seq_len(src, batch_first)
        is_causal = _detect_is_causal_mask(mask, is_causal, seq_len)
        output = src
        for mod in self.layers:
            output = mod(output, src_mask=mask, is_causal=is_causal, src_key_padding_mask=src_key_padding_mask)
        if self.norm is not None:
            output = self.norm(output)
        return output

    @classmethod
    def from_float(cls, mod: nn.TransformerEncoder) -> "TransformerEncoder":
        if not isinstance(mod, nn.TransformerEncoder):
            raise TypeError(f"{cls.__module__}.{cls.__name__}.from_float needs an nn.TransformerEncoder, "
                            f"got {type(mod).__name__}")
        new = _same_module_as(cls, mod)
        new.layers = nn.ModuleList(
            TransformerEncoderLayer.from_float(layer) if type(layer) is nn.TransformerEncoderLayer else layer
            for layer in mod.layers)
        return new  # type: ignore[return-value]


def _has_quantized_linear(layer: nn.Module) -> bool:
    return any(not isinstance(getattr(layer, name, None), nn.Linear) for name in ("linear1", "linear2"))


def swap_quantized_transformers_(model: nn.Module) -> nn.Module:
    """After dynamic quantization: puts the classes above in place of the float encoder
    (layer) classes whose feed-forward Linears were quantized, so the model runs and
    scripts. In place; returns ``model`` (a new object only when ``model`` itself is swapped)."""
    for name, child in list(model.named_children()):
        swap_quantized_transformers_(child)
        if type(child) is nn.TransformerEncoder and any(_has_quantized_linear(layer) for layer in child.layers):
            setattr(model, name, TransformerEncoder.from_float(child))
        elif type(child) is nn.TransformerEncoderLayer and _has_quantized_linear(child):
            setattr(model, name, TransformerEncoderLayer.from_float(child))
    if type(model) is nn.TransformerEncoder and any(_has_quantized_linear(layer) for layer in model.layers):
        return TransformerEncoder.from_float(model)
    if type(model) is nn.TransformerEncoderLayer and _has_quantized_linear(model):
        return TransformerEncoderLayer.from_float(model)
    return model
