"""qtorch: int8 inference for PyTorch on CPUs, the eager quantization workflow on plain integer tensors."""
from qtorch._dtypes import qint8, qint32, quint8
from qtorch._isa import kernel_isa, kernel_isa_scope, set_kernel_isa, supported_isas
from qtorch._qtensor import QTensor, quantize_per_channel, quantize_per_row_dynamic, quantize_per_tensor
import qtorch.nn.quantized._qtensor_ops  # noqa: E402,F401  (QTensor handlers: pooling, cat, activations)

__all__ = [
    "QTensor",
    "kernel_isa",
    "kernel_isa_scope",
    "qint8",
    "qint32",
    "quantize_per_channel",
    "quantize_per_row_dynamic",
    "quantize_per_tensor",
    "quint8",
    "set_kernel_isa",
    "supported_isas",
]
