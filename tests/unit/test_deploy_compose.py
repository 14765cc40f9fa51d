"""docker-compose.yml is valid Compose and agrees with the code it runs.

No Docker engine is needed. The structure is checked against the Compose Specification
JSON schema, a byte-for-byte copy of ``compose/config/compose_spec.json`` shipped in the
``docker-compose`` 1.29.2 package (PyPI wheel and Debian bookworm's ``docker-compose``;
Apache-2.0), kept at ``tests/unit/schemas/compose_spec.json`` and pinned by its SHA-256.
That package can't be a test dependency: it pins PyYAML < 6 and jsonschema < 4.
Where Debian's ``docker-compose`` binary is installed, ``docker-compose config`` (which
needs no engine) also has to accept the file, and reject it when a required variable is
missing.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
SCHEMA_FILE = Path(__file__).parent / "schemas" / "compose_spec.json"
SCHEMA_SHA256 = "0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac"
DOCUMENTED_SERVE_TARGETS = ("api", "scheduler", "extractor", "loader", "all")
APP_SERVICES = ("api", "scheduler", "extractor", "loader")
WORKERS = ("scheduler", "extractor", "loader")
REQUIRED_VARIABLES = ("DM_SECRET_KEY", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
TEST_ENV = {name: f"test-{name.lower()}" for name in REQUIRED_VARIABLES}


# ---------------------------------------------------------------- helpers (used by the other deploy tests)

def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def settings_env_names() -> set[str]:
    """Every ``DM_*`` variable that ``shared.settings.Settings`` reads."""
    return {f"DM_{name.upper()}" for name in Settings.model_fields}


def check_serve_command(args: list[str]) -> str:
    """Assert ``datamig <args>`` is a valid ``serve`` command line; return the service it names.

    Uses the real parser of services/cli.py when it imports, else the string constants of
    that file, else the documented targets.
    """
    assert args[:1] == ["serve"] and len(args) >= 2, f"not a `datamig serve …` command: {args}"
    try:
        from services.cli import build_parser
    except ImportError:
        build_parser = None
    if build_parser is not None:
        try:
            parsed = build_parser().parse_args(args)
        except SystemExit as exc:  # argparse exits on an unknown service or option
            pytest.fail(f"`datamig {shlex.join(args)}` is rejected by services/cli.py ({exc})")
        return parsed.service
    assert args[1] in _serve_targets_from_source(), f"unknown service in {args}"
    return args[1]


def _serve_targets_from_source() -> set[str]:
    cli = ROOT / "services" / "cli.py"
    if not cli.exists():
        return set(DOCUMENTED_SERVE_TARGETS)
    constants = {n.value for n in ast.walk(ast.parse(cli.read_text())) if isinstance(n, ast.Constant)}
    return {t for t in DOCUMENTED_SERVE_TARGETS if t in constants}


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def healthcheck_url_port(test: list[str]) -> tuple[int, str]:
    """The port and path of the http://127.0.0.1:PORT/PATH URL inside a healthcheck command."""
    match = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/.-]*)", " ".join(test))
    assert match, f"no local URL in healthcheck {test}"
    return int(match.group(1)), match.group(2)


def interpolate(value: object, env: dict[str, str] | None = None) -> str:
    """``value`` with each ``${NAME…}`` replaced by ``env[NAME]``, else its default, else ''."""
    env = TEST_ENV if env is None else env

    def _one(match: re.Match) -> str:
        name, operator, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        return env.get(name, rest if operator.endswith("-") else "")

    return re.sub(r"\$\{(\w+)(:?[-?])?([^}]*)\}", _one, str(value))


def interpolated_variables(text: str) -> dict[str, str]:
    """``{name: operator}`` for every ``${NAME…}`` in ``text`` ('' / ':-' / ':?' / '-' / '?')."""
    return {m.group(1): m.group(2) or "" for m in re.finditer(r"\$\{(\w+)(:?[-?])?[^}]*\}", text)}


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


# ---------------------------------------------------------------- the Compose specification

def test_the_vendored_compose_schema_is_the_unmodified_upstream_file():
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_validates_against_the_compose_specification_schema(compose):
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_an_unknown_service_key(compose):
    # Guards the test above against a schema that accepts anything.
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["restart_policy"] = "always"
    schema = json.loads(SCHEMA_FILE.read_text())
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(broken))


def _docker_compose(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    empty_env_file = tmp_path / "empty.env"  # ignore a developer's own .env
    empty_env_file.write_text("")
    base_env = {k: v for k, v in os.environ.items() if k not in REQUIRED_VARIABLES}
    return subprocess.run(
        ["docker-compose", "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), *args],
        env={**base_env, **env}, capture_output=True, text=True, timeout=60, check=False,
    )


needs_docker_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="Debian's docker-compose is not installed (apt-get install -y docker-compose)",
)


@needs_docker_compose
def test_docker_compose_config_accepts_the_file(tmp_path):
    result = _docker_compose("config", "-q", env=TEST_ENV, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


@needs_docker_compose
@pytest.mark.parametrize("missing", REQUIRED_VARIABLES)
def test_docker_compose_config_refuses_to_run_without_a_required_variable(missing, tmp_path):
    env = {k: v for k, v in TEST_ENV.items() if k != missing}
    result = _docker_compose("config", "-q", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


# ---------------------------------------------------------------- agreement with the code

def test_the_stack_has_every_service_of_the_design(services):
    assert {"rabbitmq", "postgres", *APP_SERVICES, "prometheus", "grafana"} <= set(services)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_application_service_runs_a_real_datamig_serve_target(services, name):
    # Given the image's ENTRYPOINT ["datamig"], the command is datamig's arguments
    served = check_serve_command(services[name]["command"])
    assert served == name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_dm_variable_a_service_sets_exists_in_settings(services, name):
    unknown = {k for k in services[name]["environment"] if k.startswith("DM_")} - settings_env_names()
    assert not unknown, f"{name} sets variables that shared/settings.py does not read: {unknown}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_dm_setting_value_passes_settings_validation(services, name, monkeypatch):
    for key, value in services[name]["environment"].items():
        if key.startswith("DM_"):
            monkeypatch.setenv(key, interpolate(value))
    Settings()  # raises ValidationError on a bad value


def test_api_port_is_the_same_in_command_environment_ports_and_healthcheck(services):
    api = services["api"]
    port = int(api["environment"]["DM_API_PORT"])
    assert int(option(api["command"], "--port")) == port
    assert option(api["command"], "--host") == "0.0.0.0"
    assert [str(p).rsplit(":", 1)[-1] for p in api["ports"]] == [str(port)]
    assert healthcheck_url_port(api["healthcheck"]["test"]) == (port, "/healthz")


@pytest.mark.parametrize("name", WORKERS)
def test_workers_serve_metrics_and_their_healthcheck_probes_that_port(services, name):
    port = int(services[name]["environment"]["DM_METRICS_PORT"])
    assert port > 0
    assert healthcheck_url_port(services[name]["healthcheck"]["test"]) == (port, "/metrics")


@pytest.mark.parametrize("name", WORKERS)
def test_workers_can_be_scaled(services, name):
    # `docker compose up --scale` needs no fixed container name and no fixed host port
    assert "container_name" not in services[name]
    assert "ports" not in services[name]


def test_every_service_has_a_healthcheck_and_a_restart_policy(services):
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name


def test_dependencies_wait_for_health_and_every_dependency_has_a_healthcheck(services):
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency


def test_brokers_and_databases_use_their_own_health_tools(services):
    assert services["rabbitmq"]["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3-management")
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"


def test_connection_urls_point_at_the_compose_services(services):
    env = services["api"]["environment"]
    database = urlparse(interpolate(env["DM_DATABASE_URL"]))
    broker = urlparse(interpolate(env["DM_AMQP_URL"]))
    assert database.scheme == "postgresql+psycopg2"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.path.lstrip("/") == services["postgres"]["environment"]["POSTGRES_DB"]
    assert database.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert database.password == interpolate(services["postgres"]["environment"]["POSTGRES_PASSWORD"])
    assert (broker.scheme, broker.hostname, broker.port) == ("amqp", "rabbitmq", 5672)
    assert broker.username == services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"]
    assert broker.password == interpolate(services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"])


def test_application_services_share_one_image_built_from_deploy_dockerfile(services):
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert build["dockerfile"] == "deploy/Dockerfile"
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()


def test_every_bind_mounted_file_exists(services):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


# ---------------------------------------------------------------- required variables and .env.example

def test_secrets_are_required_variables_with_a_message():
    text = COMPOSE_FILE.read_text()
    for name in REQUIRED_VARIABLES:
        uses = re.findall(r"\$\{" + name + r"(:?[-?]?)([^}]*)\}", text)
        assert uses, f"{name} is not used"
        for operator, message in uses:
            assert operator == ":?" and message.strip(), f"${{{name}}} must be ${{{name}:?message}}"


def test_env_example_lists_every_variable_the_compose_file_reads():
    used = set(interpolated_variables(COMPOSE_FILE.read_text()))
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    assert used - listed == set(), "add these to deploy/.env.example"
    assert listed - used == set(), "deploy/.env.example lists variables docker-compose.yml never reads"


def test_env_example_leaves_every_required_secret_empty():
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    for name in REQUIRED_VARIABLES:
        assert values.get(name) == "", f"{name} must be present and empty in deploy/.env.example"
