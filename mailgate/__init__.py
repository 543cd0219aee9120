"""mailgate: an email-gateway ticketing daemon."""

__version__ = "0.1.0"
