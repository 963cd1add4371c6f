"""``/metrics`` in the Prometheus text format, written by ``prometheus_client`` (never by hand).

One registry per Director (no global state); a custom collector reads the figures when scraped, so
nothing is kept twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Figures:
    version: str
    tenants_by_state: dict[str, int]
    tenants_online: int
    handshakes: int
    throttled: int
    alarms_open: list[tuple[str, str, int]]  # kind, severity, count
    jobs_by_state: dict[str, int]
    sessions: int


class DirectorCollector(Collector):
    def __init__(self, figures: Callable[[], Figures]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        f = self._figures()
        info = InfoMetricFamily("tenantry_director", "the Director's version")
        info.add_metric([], {"version": f.version})
        yield info
        tenants = GaugeMetricFamily("tenantry_tenants", "tenants by connection state", labels=["state"])
        for state, count in sorted(f.tenants_by_state.items()):
            tenants.add_metric([state], count)
        yield tenants
        yield GaugeMetricFamily("tenantry_tenants_online", "tenants whose Transporter is connected", f.tenants_online)
        yield CounterMetricFamily(
            "tenantry_uplink_handshakes", "uplink TLS handshakes completed since start", f.handshakes
        )
        yield CounterMetricFamily(
            "tenantry_uplink_throttled", "uplink connections closed by the admission rate limit", f.throttled
        )
        alarms = GaugeMetricFamily("tenantry_alarms_open", "open alarms", labels=["kind", "severity"])
        for kind, severity, count in sorted(f.alarms_open):
            alarms.add_metric([kind, severity], count)
        yield alarms
        yield GaugeMetricFamily(
            "tenantry_alarms_open_total", "open alarms of every kind", sum(n for _k, _s, n in f.alarms_open)
        )
        jobs = GaugeMetricFamily("tenantry_jobs", "jobs (runs) by state", labels=["state"])
        for state, count in sorted(f.jobs_by_state.items()):
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily("tenantry_console_sessions", "open console and portal sessions", f.sessions)


class Metrics:
    def __init__(self, figures: Callable[[], Figures]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DirectorCollector(figures))

    def render(self) -> bytes:
        return generate_latest(self.registry)
