"""See the package docstring of qtorch.nn."""
from qtorch.nn.intrinsic.modules import BNReLU2d, ConvBn2d, ConvBnReLU2d, ConvReLU2d, LinearBn1d, LinearReLU, _FusedModule

__all__ = ["BNReLU2d", "ConvBn2d", "ConvBnReLU2d", "ConvReLU2d", "LinearBn1d", "LinearReLU"]
