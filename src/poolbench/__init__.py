"""poolbench: what max vs. average pooling, or flatten vs. global pooling, do to a ConvNet."""

__version__ = "0.1.0"
