"""See the package docstring of qtorch.nn."""
from qtorch.nn.quantized.linear import Linear  # noqa: E402
from qtorch.nn.quantized.conv import Conv2d  # noqa: E402,F401
from qtorch.nn.quantized import dynamic, functional  # noqa: E402,F401
from qtorch.nn.quantized.activation import Hardswish, ReLU, ReLU6  # noqa: E402,F401
from qtorch.nn.quantized.functional_modules import FloatFunctional, QFunctional  # noqa: E402,F401
from qtorch.nn.quantized.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d  # noqa: E402,F401
from qtorch.nn.quantized.quantize import DeQuantize, Quantize  # noqa: E402,F401
