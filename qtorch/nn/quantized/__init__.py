"""See the package docstring of qtorch.nn."""
from qtorch.nn.quantized.linear import Linear  # noqa: E402
from qtorch.nn.quantized.conv import Conv2d  # noqa: E402,F401
from qtorch.nn.quantized import dynamic, functional  # noqa: E402,F401
