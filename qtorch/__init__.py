"""qtorch: int8 inference for PyTorch on CPUs, the eager quantization workflow on plain integer tensors."""
from qtorch._isa import kernel_isa, kernel_isa_scope, set_kernel_isa, supported_isas

__all__ = ["kernel_isa", "kernel_isa_scope", "set_kernel_isa", "supported_isas"]
