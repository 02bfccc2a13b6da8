"""Exporters: Prometheus text (parsed by prometheus_client), JSON lines, OpenTelemetry."""

from __future__ import annotations

import json
import math
import pathlib

import pytest
from prometheus_client.parser import text_string_to_metric_families

from system0.core import telemetry as t


@pytest.fixture
def reg() -> t.Registry:
    return t.Registry()


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_prometheus_text_parses_with_every_kind(reg: t.Registry) -> None:
    c = t.counter("requests_total", labels=("model",), help="Requests served", registry=reg)
    c.labels("policy").inc(7)
    c.labels('we"ird\\name\nline').inc(1)
    t.counter("plain", registry=reg).inc(2)
    t.gauge("queue_depth", help="Items waiting", registry=reg).set(3.5)
    h = t.histogram("latency_ns", labels=("model",), help="Inference latency", registry=reg)
    values = [3, 7, 7, 150, 1999, 2_500_000, 30_000_000]
    for v in values:
        h.labels("policy").record(v)

    fams = families(t.render_prometheus(reg))
    req = fams["requests"]
    assert req.type == "counter" and req.documentation == "Requests served"  # type: ignore[attr-defined]
    got = {s.labels["model"]: (s.name, s.value) for s in req.samples}  # type: ignore[attr-defined]
    assert got["policy"] == ("requests_total", 7.0)
    assert got['we"ird\\name\nline'] == ("requests_total", 1.0)  # escaping round-trips
    assert [s.value for s in fams["plain"].samples] == [2.0]  # type: ignore[attr-defined]
    gauge = fams["queue_depth"]
    assert gauge.type == "gauge" and gauge.samples[0].value == 3.5  # type: ignore[attr-defined]

    hist = fams["latency_ns"]
    assert hist.type == "histogram"  # type: ignore[attr-defined]
    samples = hist.samples  # type: ignore[attr-defined]
    buckets = [(s.labels["le"], s.value) for s in samples if s.name == "latency_ns_bucket"]
    les = [float(le) for le, _ in buckets]
    assert les == [float(b) for b in t.prometheus_le_bounds()] + [math.inf]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)  # cumulative
    assert counts[-1] == len(values)
    # Away from a boundary, each le counts exactly the values <= it.
    for le, n in zip(les, counts, strict=True):
        assert n == sum(1 for v in values if v <= le), le
    total = {s.name: s.value for s in samples if s.name != "latency_ns_bucket"}
    assert total == {"latency_ns_sum": sum(values), "latency_ns_count": len(values)}


def test_prometheus_le_bounds_are_fixed_1_2_5_series() -> None:
    bounds = t.prometheus_le_bounds()
    assert bounds[:6] == [1, 2, 5, 10, 20, 50]
    assert bounds[-1] == 2 * 10**12 <= t.HISTOGRAM_MAX_VALUE
    assert len(bounds) == 38


def test_empty_registry_and_empty_histogram_render(reg: t.Registry) -> None:
    assert t.render_prometheus(reg) == ""
    t.histogram("idle_ns", registry=reg)
    fams = families(t.render_prometheus(reg))
    counts = {s.name: s.value for s in fams["idle_ns"].samples if s.name != "idle_ns_bucket"}  # type: ignore[attr-defined]
    assert counts == {"idle_ns_sum": 0, "idle_ns_count": 0}


def test_write_jsonl_to_a_real_file(reg: t.Registry, tmp_path: pathlib.Path) -> None:
    t.counter("jobs_total", labels=("queue",), registry=reg).labels("fast").inc(4)
    t.gauge("temp", registry=reg).set(-1.5)
    h = t.histogram("step_ns", registry=reg)
    for v in range(1, 1001):
        h.record(v)
    t.histogram("unused_ns", registry=reg)
    path = tmp_path / "metrics.jsonl"
    with path.open("w") as fp:
        assert t.write_jsonl(fp, reg) == 4
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_name = {r["name"]: r for r in rows}
    assert by_name["jobs_total"]["labels"] == {"queue": "fast"}
    assert by_name["jobs_total"]["value"] == 4 and by_name["jobs_total"]["kind"] == "counter"
    assert by_name["temp"]["value"] == -1.5
    step = by_name["step_ns"]
    assert (step["count"], step["sum"], step["min"], step["max"]) == (1000, 500500, 1, 1000)
    assert (step["p50"], step["p90"], step["p99"], step["p999"]) == (500, 900, 990, 999)
    assert step["unit"] == "ns" and step["overflow"] == 0
    assert by_name["unused_ns"]["p50"] is None  # no data is null, never an invented 0
    assert all(r["ts_unix_ns"] > 1_600_000_000 * 10**9 for r in rows)


def test_otel_meter_provider_exports_our_metrics(reg: t.Registry) -> None:
    pytest.importorskip("opentelemetry.sdk.metrics", reason="needs the otel extra")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    c = t.counter("served_total", labels=("model",), registry=reg)
    c.labels("a").inc(5)
    h = t.histogram("infer_ns", registry=reg)
    for v in (100, 200, 300, 400):
        h.record(v)
    bridge = t.install_otel_metrics(provider, reg)
    # A family registered after install is picked up through the facade.
    t.gauge("depth", registry=reg).set(9)
    c.labels("a").inc(1)

    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[object]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points[m.name] = list(m.data.data_points)
    (served,) = points["served_total"]
    assert served.value == 6 and dict(served.attributes) == {"model": "a"}  # type: ignore[attr-defined]
    assert [p.value for p in points["depth"]] == [9]  # type: ignore[attr-defined]
    assert [p.value for p in points["infer_ns.count"]] == [4]  # type: ignore[attr-defined]
    assert [p.value for p in points["infer_ns.sum"]] == [1000]  # type: ignore[attr-defined]
    quantiles = {p.attributes["quantile"]: p.value for p in points["infer_ns"]}  # type: ignore[attr-defined]
    assert quantiles == {0.5: 200, 0.9: 400, 0.99: 400, 0.999: 400, 1.0: 400}
    assert bridge.refresh() == 0
    provider.shutdown()


def test_wrapped_exporter_sends_true_otel_histograms(
    reg: t.Registry, tmp_path: pathlib.Path
) -> None:
    pytest.importorskip("opentelemetry.sdk.metrics", reason="needs the otel extra")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    from system0.core.otel_metrics import System0MetricExporter

    out = (tmp_path / "otel.jsonl").open("w")
    console = ConsoleMetricExporter(out=out, formatter=lambda md: md.to_json(indent=None) + "\n")
    reader = PeriodicExportingMetricReader(
        System0MetricExporter(console, reg), export_interval_millis=3_600_000
    )
    provider = MeterProvider(metric_readers=[reader])
    h = t.histogram("step_ns", labels=("phase",), help="Step time", registry=reg)
    values = [1, 7, 7, 300, 4000, 2_000_000]
    for v in values:
        h.labels("train").record(v)
    t.counter("steps_total", registry=reg).inc(6)
    t.install_otel_metrics(provider, reg, histogram_summaries=False)
    provider.force_flush()
    provider.shutdown()
    out.close()

    exported: dict[str, dict[str, object]] = {}
    for line in (tmp_path / "otel.jsonl").read_text().splitlines():
        for rm in json.loads(line)["resource_metrics"]:
            for sm in rm["scope_metrics"]:
                for m in sm["metrics"]:
                    exported[m["name"]] = m
    assert "step_ns.count" not in exported  # no summary instruments when asked not to
    data = exported["step_ns"]["data"]
    assert isinstance(data, dict)
    (point,) = data["data_points"]
    assert point["attributes"] == {"phase": "train"}
    assert (point["count"], point["sum"]) == (len(values), sum(values))
    assert (point["min"], point["max"]) == (1.0, 2_000_000.0)
    bounds = point["explicit_bounds"]
    assert bounds == [float(b) for b in t.prometheus_le_bounds()]
    counts = point["bucket_counts"]
    assert len(counts) == len(bounds) + 1 and sum(counts) == len(values)
    for i, n in enumerate(counts):
        lo = bounds[i - 1] if i else -math.inf
        hi = bounds[i] if i < len(bounds) else math.inf
        assert n == sum(1 for v in values if lo < v <= hi)
    assert exported["step_ns"]["unit"] == "ns"
    steps = exported["steps_total"]["data"]
    assert isinstance(steps, dict) and steps["data_points"][0]["value"] == 6
