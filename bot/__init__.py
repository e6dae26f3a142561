"""Bangfu (帮扶通): a transport-neutral assistant for rural pairing-assistance work."""

__version__ = "0.1.0"
