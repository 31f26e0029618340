"""qtorch's quantized dtypes are torch's plain integer dtypes.

``qtorch.quint8`` is ``torch.uint8`` (affine, zero point 0..255), ``qtorch.qint8`` is
``torch.int8`` (zero point -128..127), ``qtorch.qint32`` is ``torch.int32``.
Torch's own ``torch.quint8``/``torch.qint8``/``torch.qint32`` objects are accepted
from user code and mapped; qtorch never creates tensors of them.
"""
from typing import Tuple, Union

import torch

quint8 = torch.uint8
qint8 = torch.int8
qint32 = torch.int32

# Looked up by name: torch deprecated these dtypes and may drop them.
_TORCH_QUANTIZED = {
    getattr(torch, name): plain
    for name, plain in (("quint8", torch.uint8), ("qint8", torch.int8), ("qint32", torch.int32))
    if hasattr(torch, name)
}
_BY_NAME = {"quint8": torch.uint8, "qint8": torch.int8, "qint32": torch.int32,
            "uint8": torch.uint8, "int8": torch.int8, "int32": torch.int32}
_RANGES = {torch.uint8: (0, 255), torch.int8: (-128, 127), torch.int32: (-(2**31), 2**31 - 1)}


def storage_dtype(dtype: Union[torch.dtype, str], arg: str = "dtype") -> torch.dtype:
    """The plain integer dtype for a quantized dtype given the classic way or qtorch's way."""
    if isinstance(dtype, str):
        plain = _BY_NAME.get(dtype.replace("torch.", ""))
    elif dtype in _RANGES:
        plain = dtype
    else:
        plain = _TORCH_QUANTIZED.get(dtype)
    if plain is None:
        raise TypeError(f"{arg} must be one of qtorch.quint8 (torch.uint8), qtorch.qint8 (torch.int8), "
                        f"qtorch.qint32 (torch.int32), got {dtype}")
    return plain


def dtype_range(dtype: torch.dtype) -> Tuple[int, int]:
    """(qmin, qmax) of a quantized dtype."""
    return _RANGES[storage_dtype(dtype)]
