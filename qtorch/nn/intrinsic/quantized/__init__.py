"""See the package docstring of qtorch.nn."""
from qtorch.nn.intrinsic.quantized.linear_relu import LinearReLU  # noqa: E402
from qtorch.nn.intrinsic.quantized.conv_relu import ConvReLU2d  # noqa: E402,F401
