"""Prometheus metrics of one server, in a registry of its own (``GET /metrics``)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# why a request was refused or cancelled (the nmt_rejected_total label)
REJECTED = ("overloaded", "cannot_finish_in_time", "shutting_down", "timeout", "client_gone", "too_long",
            "body_too_large", "body_timeout")


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("nmt_requests", "HTTP requests by route and status code", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("nmt_request_seconds", "Request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.lines = Counter("nmt_translated_lines", "Lines translated", ["model"], registry=self.registry)
        self.batch_lines = Histogram("nmt_batch_lines", "Lines per merged decoding call (dynamic batch)", ["model"],
                                     buckets=BATCH_BUCKETS, registry=self.registry)
        self.decode_seconds = Histogram("nmt_decode_seconds", "Time per merged decoding call", ["model"],
                                        buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_lines = Gauge("nmt_queue_lines", "Lines waiting to be decoded", ["model"], registry=self.registry)
        self.rejected = Counter("nmt_rejected", "Requests refused or cancelled, by reason", ["reason"],
                                registry=self.registry)
        for reason in REJECTED:  # present at 0 from the start: an alert sees 0, not "no data"
            self.rejected.labels(reason)

    def render(self) -> bytes:
        return generate_latest(self.registry)
