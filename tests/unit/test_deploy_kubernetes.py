"""deploy/kubernetes/ manifests load and agree with the CLI, the settings and the queue topology."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.topology import Topology
from tests.unit.test_deploy_compose import APP_SERVICES, check_serve_command, option, settings_env_names

K8S = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
API_VERSIONS = {
    "Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1", "Secret": "v1",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
    "ScaledObject": "keda.sh/v1alpha1", "TriggerAuthentication": "keda.sh/v1alpha1",
}


def _documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


@pytest.fixture(scope="module")
def documents() -> list[tuple[str, dict]]:
    return _documents()


def _by_kind(documents, kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in documents if doc["kind"] == kind}


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _env(deployment: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(deployment).get("env", [])}


@pytest.fixture(scope="module")
def deployments(documents) -> dict[str, dict]:
    return _by_kind(documents, "Deployment")


def test_every_document_has_a_known_kind_and_api_version(documents):
    for filename, doc in documents:
        assert API_VERSIONS.get(doc["kind"]) == doc["apiVersion"], (filename, doc["kind"])
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], filename


def test_there_is_one_deployment_per_service(deployments):
    assert set(deployments) == {f"datamig-{name}" for name in APP_SERVICES}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_deployment_runs_its_own_datamig_serve_target(deployments, name):
    container = _container(deployments[f"datamig-{name}"])
    assert "command" not in container, "keep the image's ENTRYPOINT (datamig)"
    assert check_serve_command(container["args"]) == name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_deployment_selects_its_own_pods(deployments, name):
    spec = deployments[f"datamig-{name}"]["spec"]
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    assert selector["app.kubernetes.io/component"] == name


def test_extractors_and_loaders_run_several_replicas(deployments):
    assert deployments["datamig-extractor"]["spec"]["replicas"] > 1
    assert deployments["datamig-loader"]["spec"]["replicas"] > 1


def test_every_dm_variable_in_configmap_and_deployments_exists_in_settings(documents, deployments):
    known = settings_env_names()
    configmap = _by_kind(documents, "ConfigMap")["datamig-config"]
    secrets = _by_kind(documents, "Secret")["datamig-secrets"]
    names = set(configmap["data"]) | set(secrets["stringData"])
    for deployment in deployments.values():
        names |= set(_env(deployment))
    assert {n for n in names if n.startswith("DM_")} - known == set()
    assert {"DM_DATABASE_URL", "DM_AMQP_URL", "DM_SECRET_KEY"} <= set(secrets["stringData"])


def test_deployments_read_the_configmap_and_secret_that_exist(documents, deployments):
    configmaps, secrets = _by_kind(documents, "ConfigMap"), _by_kind(documents, "Secret")
    for name, deployment in deployments.items():
        sources = _container(deployment)["envFrom"]
        assert {s["configMapRef"]["name"] for s in sources if "configMapRef" in s} <= set(configmaps), name
        assert {s["secretRef"]["name"] for s in sources if "secretRef" in s} <= set(secrets), name


def test_api_listens_probes_and_is_exposed_on_the_same_port(documents, deployments):
    api = deployments["datamig-api"]
    container = _container(api)
    port = int(_env(api)["DM_API_PORT"])
    assert int(option(container["args"], "--port")) == port
    (declared,) = container["ports"]
    assert declared["containerPort"] == port
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": declared["name"]}
    service = _by_kind(documents, "Service")["datamig-api"]
    assert service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] in (declared["name"], port)


@pytest.mark.parametrize("name", ["scheduler", "extractor", "loader"])
def test_workers_expose_and_probe_their_metrics_port(deployments, name):
    deployment = deployments[f"datamig-{name}"]
    container = _container(deployment)
    port = int(_env(deployment)["DM_METRICS_PORT"])
    (declared,) = container["ports"]
    assert declared["containerPort"] == port
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": declared["name"]}
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_containers_run_as_the_images_non_root_user(deployments, name):
    pod = deployments[f"datamig-{name}"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the uid created in deploy/Dockerfile
    assert _container(deployments[f"datamig-{name}"])["securityContext"]["allowPrivilegeEscalation"] is False


def test_kustomization_lists_every_manifest_except_the_examples_and_keda():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    optional = {"kustomization.yaml", "secret.example.yaml", "keda.yaml"}
    expected = {p.name for p in K8S.glob("*.yaml")} - optional
    assert set(kustomization["resources"]) == expected


def test_keda_scales_extractors_on_runs_and_loaders_on_loads(documents, deployments):
    # Given the queue prefix the ConfigMap sets
    prefix = _by_kind(documents, "ConfigMap")["datamig-config"]["data"]["DM_QUEUE_PREFIX"]
    topology = Topology(prefix=prefix)
    scaled = _by_kind(documents, "ScaledObject")
    auths = _by_kind(documents, "TriggerAuthentication")
    # Then each ScaledObject targets a real Deployment and the queue that Deployment consumes
    expected = {"datamig-extractor": topology.runs, "datamig-loader": topology.loads}
    assert {s["spec"]["scaleTargetRef"]["name"]: s["spec"]["triggers"][0]["metadata"]["queueName"]
            for s in scaled.values()} == expected
    for obj in scaled.values():
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments
        trigger = obj["spec"]["triggers"][0]
        assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["authenticationRef"]["name"] in auths
        assert obj["spec"]["minReplicaCount"] >= 1


def test_keda_authentication_reads_a_secret_that_the_example_defines(documents):
    secrets = _by_kind(documents, "Secret")
    for auth in _by_kind(documents, "TriggerAuthentication").values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]]["stringData"]


def test_readme_explains_scaling_by_queue_depth_with_an_example():
    readme = (K8S / "README.md").read_text()
    assert "## Scaling workers by queue depth" in readme
    assert "kind: ScaledObject" in readme and "queueName: datamig.loads" in readme
