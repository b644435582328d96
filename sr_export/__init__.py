"""sr-export: PyTorch super-resolution networks to edge runtimes, with proof."""

__version__ = "0.1.0"
