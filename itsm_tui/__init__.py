"""itsm-tui: a keyboard-driven terminal service-desk console."""

__version__ = "0.1.0"
