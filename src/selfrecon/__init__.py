"""selfrecon: learn to reconstruct images from noisy, incomplete measurements alone."""

__version__ = "0.1.0"

__all__ = ["__version__"]
