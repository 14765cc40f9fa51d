"""The Grafana dashboard queries only metrics that shared/metrics.py defines."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from shared import metrics
from tests.unit.test_deploy_compose import load_compose

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "datamig.json"
# Series Prometheus makes itself, not the application.
PROMETHEUS_SERIES = {"up"}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                   "unless", "offset", "bool", "inf", "nan"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def defined_series() -> set[str]:
    """Every series name the metrics of shared/metrics.py expose."""
    names = set()
    for collector in vars(metrics).values():
        if hasattr(collector, "_type") and hasattr(collector, "_name"):
            names |= {collector._name + suffix for suffix in SUFFIXES[collector._type]}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords removed)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range and subquery durations
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)  # Grafana variables
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        followed_by = expr[match.end():].lstrip()[:1]
        if followed_by != "(" and match.group() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _exprs(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if query:
            exprs.append(re.sub(r"^label_values\((.*?)(?:,\s*\w+)?\)$", r"\1", query))
    return exprs


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (status) (increase(datamig_executions_total{job_name=~"$job"}[$__range]))',
         {"datamig_executions_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m]))) / on (a) group_left y", {"x_bucket", "y"}),
        ("time() - max(datamig_worker_last_heartbeat_timestamp_seconds) > bool 60",
         {"datamig_worker_last_heartbeat_timestamp_seconds"}),
    ],
)
def test_metric_names_extracts_only_selectors(expr, names):
    assert metric_names(expr) == names


def test_the_dashboard_queries_only_metrics_defined_in_shared_metrics(dashboard):
    allowed = defined_series() | PROMETHEUS_SERIES
    used = set().union(*(metric_names(e) for e in _exprs(dashboard)))
    assert used, "no PromQL found"
    assert used - allowed == set()


@pytest.mark.parametrize(
    "metric",
    [
        "datamig_executions_total",  # executions by status, failures
        "datamig_rows_written_total",  # rows per second
        "datamig_rows_read_total",
        "datamig_rows_failed_total",  # failures
        "datamig_execution_duration_seconds_bucket",  # durations
        "datamig_queue_depth_messages",  # queue depth
        "datamig_schedule_lag_seconds_bucket",  # schedule lag
    ],
)
def test_the_dashboard_shows_each_topic_of_the_issue(dashboard, metric):
    assert any(metric in metric_names(e) for e in _exprs(dashboard))


def test_panels_have_unique_ids_and_a_grid_position(dashboard):
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    assert all({"x", "y", "w", "h"} <= set(p["gridPos"]) for p in panels)
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in panels)


def test_every_query_uses_the_provisioned_datasource(dashboard):
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uids = {ds["uid"] for ds in provisioned["datasources"]}
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert all(t["datasource"]["uid"] in uids for t in panel["targets"]), panel["title"]


def test_no_panel_groups_by_an_execution_id(dashboard):
    for expr in _exprs(dashboard):
        assert "execution" not in re.sub(r"datamig_executions?\w*", "", expr), expr


def test_the_dashboard_provider_reads_the_directory_compose_mounts():
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/datamig.yml").read_text())["providers"][0]
    volumes = load_compose()["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in volumes
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
