"""See the package docstring of qtorch.nn."""
from qtorch.nn.qat.modules import Conv2d, Linear

__all__ = ["Conv2d", "Linear"]
