"""Prometheus metrics of one daemon process (served at /metrics)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from .reports import Recent, stats

log = logging.getLogger("mailgate.metrics")
disable_created_metrics()  # the *_created series only double the output
# The service figures per department are read from the database when scraped, at most
# once in this many seconds (a scrape in between gets the figures read last).
SERVICE_CACHE_SECONDS = 60.0


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

    def watch_service(self, read: Callable[[], dict[str, Recent] | None]) -> None:
        """Export `read()` (the departments' `reports.recent`; None: the database did
        not answer) as gauges per department."""
        self.registry.register(ServiceGauges(read))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ServiceGauges:
    """A collector of the service figures per department (`reports.recent`): open
    tickets, tickets created in the last 24 hours, and of the tickets created in the
    last 7 days the first-response and resolution working hours (median, mean, p90),
    the deadlines missed and the share answered within the promise. Read when
    scraped, cached for `ttl` seconds."""

    def __init__(self, read: Callable[[], dict[str, Recent] | None],
                 ttl: float = SERVICE_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.read, self.ttl, self.clock = read, ttl, clock
        self._lock = threading.Lock()  # concurrent scrapes share one read
        self._figures: dict[str, Recent] | None = None
        self._read_at: float | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families({}))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._read_at is None or self.clock() - self._read_at >= self.ttl:
                self._figures, self._read_at = self._read(), self.clock()
            figures = self._figures or {}
        return self._families(figures)

    def _read(self) -> dict[str, Recent] | None:
        try:
            return self.read()
        except Exception:  # our bug: logged loudly, and the other metrics are still served
            log.exception("service figures for /metrics failed")
            return None

    def _families(self, figures: dict[str, Recent]) -> Iterator[GaugeMetricFamily]:
        week = "of the tickets created in the last 7 days"
        yield _gauge("mailgate_department_open_tickets", "Tickets not resolved or closed",
                     {d: f.open for d, f in figures.items()})
        yield _gauge("mailgate_department_tickets_created_last_24h",
                     "Tickets created in the last 24 hours",
                     {d: f.created_last_day for d, f in figures.items()})
        for name, kind, hours in (("first_response", "First-response", "first_responses"),
                                  ("resolution", "Resolution", "resolutions")):
            family = GaugeMetricFamily(
                f"mailgate_department_{name}_working_hours",
                f"{kind} time {week}, in working hours (median, mean, p90)",
                labels=["department", "statistic"])
            for department, f in figures.items():
                values = vars(stats(getattr(f.last_week, hours)))
                for statistic, value in values.items():
                    if value is not None:
                        family.add_metric([department, statistic], value)
            yield family
        yield _gauge("mailgate_department_sla_breaches_last_7d",
                     f"Deadlines missed (escalations) {week}",
                     {d: f.last_week.breaches for d, f in figures.items()})
        yield _gauge("mailgate_department_within_promise_ratio",
                     f"Share {week} answered within the first-response target "
                     "(of those whose target was tested)",
                     {d: f.last_week.within_promise for d, f in figures.items()})


def _gauge(name: str, text: str, values: dict[str, float | None]) -> GaugeMetricFamily:
    """A gauge per department; a department without a value (None) has no sample."""
    family = GaugeMetricFamily(name, text, labels=["department"])
    for department, value in values.items():
        if value is not None:
            family.add_metric([department], value)
    return family
