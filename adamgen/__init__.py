"""adamgen: how optimizers shape what a two-layer CNN learns."""

__version__ = "0.1.0"
