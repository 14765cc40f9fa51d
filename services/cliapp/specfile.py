"""Projects and jobs as code: the YAML file ``datamig jobs apply`` reads.

Shape::

    projects:                       # ProjectSpec fields
      - name: Orders DB
        url: postgresql://app:${ORDERS_DB_PASSWORD}@orders-db:5432/orders
    jobs:                           # JobSpec fields, projects referred to by name
      - name: Copy orders
        steps:
          - {name: orders, project: Orders DB, sql: "SELECT * FROM orders"}
        destination: {project: Warehouse, table: dwh.orders, mode: upsert}
        transform: "SELECT id, lower(email) AS email FROM @result1"   # optional (README: Transformation step)

``${NAME}`` in any string of the ``projects`` section is replaced by the environment
variable NAME (``$${`` writes a literal ``${``); a missing variable is an error. Jobs
are not expanded: their SQL is passed as written. Passwords (and URL passwords) are
secrets: :attr:`SpecFile.secrets` lists them so that output can redact them.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from services.cliapp.client import CliError
from shared.connections import ProjectSpec
from shared.dialects.options import is_secret_option
from shared.jobspec import JobSpec

TOP_LEVEL_KEYS = ("projects", "jobs")
PLACEHOLDER_ID = 1
_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SpecFileError(CliError):
    """The file cannot be used: names the file, the item and the field (exit code 2)."""

    def __init__(self, path: str, item: str, message: str, *, field_path: str = "") -> None:
        self.path, self.item, self.field_path = path, item, field_path
        where = ": ".join(p for p in (path, item, field_path) if p)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class FileJob:
    """A job from the file: a validated JobSpec (with placeholder project ids) and the project names."""

    spec: JobSpec
    step_projects: tuple[str, ...]
    destination_project: str

    @property
    def name(self) -> str:
        return self.spec.name

    def project_names(self) -> set[str]:
        return {*self.step_projects, self.destination_project}

    def named_dump(self) -> dict[str, Any]:
        """The job as comparable JSON, with ``project`` (a name) instead of ``project_id``."""
        return with_project_names(self.spec.model_dump(mode="json"), list(self.step_projects),
                                  self.destination_project)

    def to_spec(self, project_ids: Mapping[str, int]) -> JobSpec:
        """The JobSpec the API takes, with real project ids. Raises KeyError on an unknown name."""
        data = self.spec.model_dump(mode="json")
        for step, project in zip(data["steps"], self.step_projects):
            step["project_id"] = project_ids[project]
        data["destination"]["project_id"] = project_ids[self.destination_project]
        return JobSpec.model_validate(data)


@dataclass
class SpecFile:
    path: str
    projects: list[ProjectSpec] = field(default_factory=list)
    jobs: list[FileJob] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def with_project_names(data: dict[str, Any], steps: list[str], destination: str) -> dict[str, Any]:
    for step, project in zip(data["steps"], steps):
        step.pop("project_id", None)
        step["project"] = project
    data["destination"].pop("project_id", None)
    data["destination"]["project"] = destination
    return data


def field_path(loc: tuple | list) -> str:
    """('steps', 0, 'project_id') → 'steps[0].project' (the file's words)."""
    out = ""
    for part in loc:
        if part == "body":
            continue
        if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + ("project" if part == "project_id" else str(part))
    return out


def expand_env(value: Any, env: Mapping[str, str], *, on_missing: Any) -> Any:
    """Replace ``${NAME}`` in every string of ``value``; ``on_missing(name, key_path)`` raises."""

    def walk(v: Any, key: str) -> Any:
        if isinstance(v, str):
            def sub(m: re.Match) -> str:
                if m.group(0) == "$${":
                    return "${"
                if m.group(1) not in env:
                    on_missing(m.group(1), key)
                return env[m.group(1)]
            return _ENV_RE.sub(sub, v)
        if isinstance(v, dict):
            return {k: walk(x, f"{key}.{k}" if key else str(k)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, f"{key}[{i}]") for i, x in enumerate(v)]
        return v

    return walk(value, "")


def _item_label(kind: str, raw: Any, index: int) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f'{kind} "{name}"' if isinstance(name, str) and name.strip() else f"{kind}s[{index}]"


def _errors(path: str, item: str, exc: ValidationError, *, redact: Any = str) -> SpecFileError:
    first = exc.errors()[0]
    msg = redact(str(first["msg"]).removeprefix("Value error, "))
    more = len(exc.errors()) - 1
    return SpecFileError(path, item, msg + (f" (and {more} more)" if more else ""), field_path=field_path(first["loc"]))


def parse_project(raw: Any, *, path: str, index: int, env: Mapping[str, str]) -> tuple[ProjectSpec, set[str]]:
    item = _item_label("project", raw, index)
    if not isinstance(raw, dict):
        raise SpecFileError(path, item, "must be a mapping of ProjectSpec fields")

    def missing(name: str, key: str) -> None:
        raise SpecFileError(path, item, f"environment variable {name} is not set", field_path=key)

    data = expand_env(raw, env, on_missing=missing)
    secrets = _secret_values(data)
    try:
        spec = ProjectSpec.model_validate(data)
    except ValidationError as exc:
        raise _errors(path, item, exc, redact=lambda s: _redact(s, secrets)) from None
    return spec, secrets


def _secret_values(data: dict[str, Any]) -> set[str]:
    """The password, the URL's password (``user:pw@`` or ``?password=``) and secret-bearing options."""
    found = [data.get("password")]
    if isinstance(data.get("url"), str):
        try:
            url = make_url(data["url"])
            found += [url.password, *(v for k, v in url.query.items() if is_secret_option(None, k))]
        except Exception:  # noqa: BLE001 - validation reports the bad URL
            pass
    if isinstance(data.get("options"), dict):
        found += [v for k, v in data["options"].items() if is_secret_option(None, str(k))]
    return {str(v) for v in found if isinstance(v, str) and v}


def _redact(text: str, secrets: set[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _project_ref(raw: dict, *, path: str, item: str, where: str) -> str:
    if "project_id" in raw:
        raise SpecFileError(path, item, "refer to projects by name (project: NAME), not project_id",
                            field_path=f"{where}.project_id")
    name = raw.get("project")
    if not isinstance(name, str) or not name.strip():
        raise SpecFileError(path, item, "the name of a project is required", field_path=f"{where}.project")
    return name.strip()


def parse_job(raw: Any, *, path: str, index: int) -> FileJob:
    item = _item_label("job", raw, index)
    if not isinstance(raw, dict):
        raise SpecFileError(path, item, "must be a mapping of JobSpec fields")
    data = dict(raw)
    steps = data.get("steps")
    step_projects: list[str] = []
    if isinstance(steps, list):
        data["steps"] = []
        for i, step in enumerate(steps):
            if not isinstance(step, dict):
                raise SpecFileError(path, item, "a step must be a mapping", field_path=f"steps[{i}]")
            step_projects.append(_project_ref(step, path=path, item=item, where=f"steps[{i}]"))
            data["steps"].append({k: v for k, v in step.items() if k != "project"} | {"project_id": PLACEHOLDER_ID})
    destination = data.get("destination")
    dest_project = ""
    if isinstance(destination, dict):
        dest_project = _project_ref(destination, path=path, item=item, where="destination")
        data["destination"] = {k: v for k, v in destination.items() if k != "project"} | {
            "project_id": PLACEHOLDER_ID}
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise _errors(path, item, exc) from None
    return FileJob(spec=spec, step_projects=tuple(step_projects), destination_project=dest_project)


def _check_unique(path: str, kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SpecFileError(path, f'{kind} "{name}"', f"the name appears more than once in the file")
        seen.add(name)


def parse_document(doc: Any, *, path: str, env: Mapping[str, str]) -> SpecFile:
    """Validate a loaded YAML document. Raises SpecFileError naming the item and the field."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SpecFileError(path, "", "the file must be a mapping with 'projects:' and/or 'jobs:'")
    unknown = sorted(set(doc) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise SpecFileError(path, "", f"unknown top-level key(s) {unknown}; expected {list(TOP_LEVEL_KEYS)}")
    out = SpecFile(path=path)
    for key in TOP_LEVEL_KEYS:
        if not isinstance(doc.get(key) or [], list):
            raise SpecFileError(path, key, "must be a list")
    for i, raw in enumerate(doc.get("projects") or []):
        spec, secrets = parse_project(raw, path=path, index=i, env=env)
        out.projects.append(spec)
        out.secrets |= secrets
    for i, raw in enumerate(doc.get("jobs") or []):
        out.jobs.append(parse_job(raw, path=path, index=i))
    _check_unique(path, "project", [p.name for p in out.projects])
    _check_unique(path, "job", [j.name for j in out.jobs])
    return out


def load_spec_file(path: str | Path, *, env: Mapping[str, str] | None = None) -> SpecFile:
    """Read and validate a jobs file. Raises SpecFileError (unreadable, bad YAML, invalid item)."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecFileError(path, "", f"cannot read the file: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecFileError(path, where, f"invalid YAML: {problem}") from None
    return parse_document(doc, path=path, env=os.environ if env is None else env)
