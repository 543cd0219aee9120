"""Prometheus metrics of one daemon process (served at /metrics)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # the *_created series only double the output


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.messages = Counter("mailgate_messages_total", "Inbound messages by source and outcome",
                                ["source", "outcome"], registry=self.registry)
        self.rejected = Counter("mailgate_smtp_rejected_total",
                                "SMTP/LMTP commands refused, by reason", ["reason"],
                                registry=self.registry)
        self.temporary = Counter("mailgate_temporary_failures_total",
                                 "Messages answered 'try again later', by source", ["source"],
                                 registry=self.registry)
        self.tickets = Counter("mailgate_tickets_created_total", "Tickets created",
                               registry=self.registry)
        self.latency = Histogram("mailgate_pipeline_seconds", "Time to ingest one message",
                                 ["source"], registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.poll_errors = Counter("mailgate_imap_poll_errors_total",
                                   "IMAP poll failures by account", ["account"],
                                   registry=self.registry)
        self.outbox_depth = Gauge("mailgate_outbox_depth", "Outgoing messages waiting",
                                  registry=self.registry)
        self.outbox_oldest = Gauge(
            "mailgate_outbox_oldest_pending_seconds",
            "How long the longest-waiting outgoing message has been due (0: none is)",
            registry=self.registry)

    def watch_outbox(self, depth: Callable[[], int],
                     oldest: Callable[[], float] | None = None) -> None:
        self.outbox_depth.set_function(depth)
        if oldest is not None:
            self.outbox_oldest.set_function(oldest)

    def render(self) -> bytes:
        return generate_latest(self.registry)
