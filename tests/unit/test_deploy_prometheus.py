"""deploy/prometheus/prometheus.yml scrapes every replica of every service on the right port."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shared import metrics
from tests.unit.test_deploy_compose import WORKERS, load_compose

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "prometheus.yml"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def _jobs(config: dict) -> dict[str, dict]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def _dns_targets(job: dict) -> dict[str, int]:
    """{compose service name: port} found through Docker DNS by a scrape job."""
    return {name: sd["port"] for sd in job.get("dns_sd_configs", []) for name in sd["names"]}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install -y prometheus)")
def test_promtool_check_config_accepts_the_file():
    result = subprocess.run(
        ["promtool", "check", "config", str(CONFIG)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_file_mounts_this_file_as_prometheus_config():
    prometheus = load_compose()["services"]["prometheus"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_the_api_is_scraped_on_its_port_at_slash_metrics(config):
    api = load_compose()["services"]["api"]
    job = _jobs(config)["datamig-api"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert _dns_targets(job) == {"api": int(api["environment"]["DM_API_PORT"])}


def test_every_worker_is_scraped_on_its_metrics_port_through_dns_discovery(config):
    # Given Docker DNS answers a service name with every replica's address
    services = load_compose()["services"]
    targets = {}
    for job in config["scrape_configs"]:
        targets.update(_dns_targets(job))
    # Then each worker service is discovered by name, on the DM_METRICS_PORT it sets
    for name in WORKERS:
        assert targets.get(name) == int(services[name]["environment"]["DM_METRICS_PORT"]), name


def test_dns_discovery_asks_for_a_records(config):
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            assert sd.get("type") == "A"  # SRV records do not exist for compose services


def test_target_labels_do_not_shadow_application_labels(config):
    # A target label with the same name as a metric label renames the metric's to exported_<name>
    application_labels = {label for c in vars(metrics).values()
                          if hasattr(c, "_labelnames") for label in c._labelnames}
    for job in config["scrape_configs"]:
        for rule in job.get("relabel_configs", []):
            assert rule.get("target_label") not in application_labels, rule


def test_scrape_interval_fits_the_grafana_datasource_time_interval(config):
    datasource = Path(__file__).resolve().parents[2] / "deploy/grafana/provisioning/datasources/prometheus.yml"
    ds = yaml.safe_load(datasource.read_text())["datasources"][0]
    assert ds["jsonData"]["timeInterval"] == config["global"]["scrape_interval"]
    assert ds["url"] == "http://prometheus:9090"
