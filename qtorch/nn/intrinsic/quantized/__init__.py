"""See the package docstring of qtorch.nn."""
from qtorch.nn.intrinsic.quantized.linear_relu import LinearReLU  # noqa: E402
