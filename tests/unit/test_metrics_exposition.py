"""The metrics every service exports parse as Prometheus text and keep bounded labels."""
from __future__ import annotations

import shutil
import subprocess
import urllib.request

import pytest
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from shared import metrics

# Families that prometheus_client's default registry adds on its own.
STANDARD_PREFIXES = ("process_", "python_")
FORBIDDEN_LABELS = {"execution", "execution_id", "run_id", "message_id"}


def _our_collectors() -> dict[str, Counter | Gauge | Histogram]:
    return {
        name: value
        for name, value in vars(metrics).items()
        if isinstance(value, Counter | Gauge | Histogram)
    }


def _touch(collector: Counter | Gauge | Histogram) -> None:
    labels = {name: f"x_{name}" for name in collector._labelnames}
    child = collector.labels(**labels) if labels else collector
    if isinstance(collector, Counter):
        child.inc()
    elif isinstance(collector, Gauge):
        child.set(1)
    else:
        child.observe(0.3)


@pytest.fixture(scope="module")
def families() -> list:
    # Given every metric of shared.metrics incremented once
    for collector in _our_collectors().values():
        _touch(collector)
    metrics.record_heartbeat("loader", now=1_700_000_000.0)
    # When the registry is exposed as text
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    # Then Prometheus's own parser reads it
    return list(text_string_to_metric_families(body.decode()))


def test_every_metric_object_is_registered_in_the_module_registry():
    names = {c._name for c in _our_collectors().values()}
    registered = set(metrics.REGISTRY._names_to_collectors)
    assert names <= registered
    assert len(names) == 15


def test_exposition_parses_and_every_project_family_is_prefixed_datamig(families):
    ours = [f for f in families if not f.name.startswith(STANDARD_PREFIXES)]
    assert ours, "no project metrics in the exposition"
    assert all(f.name.startswith("datamig_") for f in ours), [f.name for f in ours]
    expected = {c._name for c in _our_collectors().values()}
    assert expected <= {f.name for f in ours}


def test_no_label_carries_an_execution_id(families):
    for family in families:
        for sample in family.samples:
            assert not FORBIDDEN_LABELS & set(sample.labels), (sample.name, sample.labels)


def test_no_metric_uses_the_label_name_job_that_prometheus_reserves():
    for collector in _our_collectors().values():
        assert "job" not in collector._labelnames, collector._name


@pytest.mark.parametrize(
    ("collector", "unit_suffix"),
    [
        (metrics.EXECUTION_DURATION, "_seconds"),
        (metrics.BATCH_LOAD_LATENCY, "_seconds"),
        (metrics.SCHEDULE_LAG, "_seconds"),
        (metrics.WORKER_LAST_HEARTBEAT, "_seconds"),
        (metrics.QUEUE_DEPTH, "_messages"),
    ],
)
def test_metric_names_carry_their_unit(collector, unit_suffix):
    assert collector._name.endswith(unit_suffix)


def test_the_duration_histogram_reaches_the_24_hour_timeout_limit():
    assert max(metrics.DURATION_BUCKETS_S) >= 24 * 3600


@pytest.mark.parametrize(
    ("queue", "kind"),
    [
        ("datamig.runs", "runs"),
        ("datamig.loads", "loads"),
        ("datamig.batches.12345", "batches"),
        ("datamig.events.recorder", "events"),
        ("datamig.control", "control"),
        ("datamig.runs.dlq", "runs"),
        ("other.runs", "other"),
        ("datamig.something", "other"),
    ],
)
def test_queue_kind_folds_queue_names_into_bounded_labels(queue, kind):
    assert metrics.queue_kind(queue) == kind


def test_queue_kind_honours_the_prefix():
    assert metrics.queue_kind("staging.batches.7", prefix="staging") == "batches"


def test_record_heartbeat_rejects_an_unknown_service():
    with pytest.raises(ValueError):
        metrics.record_heartbeat("extractor-7f9c")


def test_start_metrics_server_with_port_zero_starts_nothing():
    metrics.start_metrics_server(0)
    assert 0 not in metrics._server_ports


def test_start_metrics_server_serves_the_registry_and_is_idempotent(unused_port: int):
    metrics.start_metrics_server(unused_port)
    metrics.start_metrics_server(unused_port)  # `serve all`: a second worker, same port
    with urllib.request.urlopen(f"http://127.0.0.1:{unused_port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "datamig_executions_total" in body


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_check_metrics_accepts_the_exposition(families):
    body, _ = metrics.exposition()
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
