"""AutoCall: a programmable voice IVR and outbound dialer engine for Asterisk."""

__version__ = "0.1.0"
