"""qtorch's module namespaces, mirroring torch.ao.nn: quantized, intrinsic, qat."""
