"""The pipeline: one path for every inbound message (runner.py names the steps)."""
from .envelope import Envelope, Result, Vouch
from .retry import retry_quarantined
from .runner import STEPS, ingest

__all__ = ["Envelope", "Result", "Vouch", "STEPS", "ingest", "retry_quarantined"]
