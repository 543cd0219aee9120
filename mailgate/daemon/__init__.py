"""`mailgate run`: SMTP/LMTP listeners, IMAP pollers, the scheduler and the health endpoint.

- `lifecycle.py`: `Daemon` — start, serve until a signal, reload on SIGHUP, stop;
- `listeners.py`: the sockets, SMTP/LMTP sessions and their drain at shutdown;
- `health.py`: the HTTP endpoint, GET /healthz and /metrics;
- `schedule.py`: APScheduler's jobs — the service jobs and the IMAP pollers.

One asyncio loop serves the SMTP/LMTP and HTTP sockets. Every message, whichever
transport brought it, goes through `inbound.intake.Intake` to one of the delivery
worker processes (`inbound/delivery.py`), which runs the pipeline. The listeners
run their RCPT checks, and their waits for a delivery worker, in a bounded thread
pool (`[smtp] workers`); IMAP polls and the service jobs run in APScheduler's
threads (and one IDLE watcher thread per account); the outbox sender runs its own
threads (`outbound/sender.py`). Nothing below this package imports it.
"""
from .lifecycle import Daemon

__all__ = ["Daemon"]
