"""dunning: a self-hosted dunning and failed-payment recovery engine."""

__version__ = "0.1.0"
