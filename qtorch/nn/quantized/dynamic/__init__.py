"""See the package docstring of qtorch.nn."""
