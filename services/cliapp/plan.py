"""What ``datamig jobs apply`` will do: a pure comparison of the file with the server.

Projects and jobs are matched by name (archived jobs are ignored, so a file job whose
only namesake is archived is created anew). Passwords are write-only on the server, so
a project's password counts as changed only when the server has none, or when the
caller asks (``--update-passwords``). Field paths use 0-based indexes: ``steps[1].sql``
is the second step's SQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from services.cliapp.specfile import SpecFile, SpecFileError, with_project_names
from shared.connections import ProjectSpec, spec_password
from shared.jobspec import JobSpec
from shared.store.projects import normalized, public_options

PROJECT_FIELDS = ("engine", "url", "host", "port", "database", "username", "options")
SYMBOLS = {"create": "+", "update": "~", "unchanged": "="}

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class Change:
    action: Action
    kind: Literal["project", "job"]
    name: str
    fields: tuple[str, ...] = ()
    server_id: int | None = None

    def line(self) -> str:
        text = f'{SYMBOLS[self.action]} {self.action} {self.kind} "{self.name}"'
        return text + (": " + ", ".join(self.fields) if self.fields else "")


def diff(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths where ``new`` differs from ``old`` (dicts by key, lists by index)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in [*old, *(k for k in new if k not in old)]:
            out += diff(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(old, list) and isinstance(new, list) and path.endswith("steps"):
        out = []
        for i in range(max(len(old), len(new))):
            if i >= len(old):
                out.append(f"{path}[{i}] (added)")
            elif i >= len(new):
                out.append(f"{path}[{i}] (removed)")
            else:
                out += diff(old[i], new[i], f"{path}[{i}]")
        return out
    return [] if old == new else [path]


def project_view(spec: ProjectSpec) -> dict[str, Any]:
    """The comparable public form of a file project (as the server would show it: secret
    query parameters moved into the options, secret option values as ``***``)."""
    engine = spec.engine.value if spec.engine else None
    url, _, options = normalized(spec)
    return {"engine": engine, "url": url_without_password(url), "host": spec.host, "port": spec.port,
            "database": spec.database, "username": spec.username, "options": public_options(engine, options)}


def url_without_password(url: str | None) -> str | None:
    """A URL with no password at all (the server shows ``***`` in its place, or nothing)."""
    if not url:
        return None
    try:
        return make_url(url)._replace(password=None).render_as_string(hide_password=False)
    except Exception:  # noqa: BLE001 - not a URL: compare the text
        return url


def has_password(spec: ProjectSpec) -> bool:
    return bool(spec_password(spec))


def server_job_view(job: dict[str, Any], project_names: dict[int, str]) -> dict[str, Any]:
    """A server job in the file's comparable form (project names instead of ids)."""
    data = {k: job.get(k) for k in JobSpec.model_fields if k in job}
    try:
        data = JobSpec.model_validate(data).model_dump(mode="json")
    except ValidationError:
        pass  # stored before a rule changed: compare as it is
    name = lambda pid: project_names.get(pid, f"#{pid}")  # noqa: E731
    return with_project_names(data, [name(s.get("project_id")) for s in data.get("steps", [])],
                              name(data.get("destination", {}).get("project_id")))


def _by_name(path: str, kind: str, items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if item["name"] in out:
            raise SpecFileError(path, f'{kind} "{item["name"]}"',
                                f"the server has several {kind}s with this name (ids {out[item['name']]['id']} and "
                                f"{item['id']}); rename one so that the file can refer to it")
        out[item["name"]] = item
    return out


def compute_plan(spec: SpecFile, *, server_projects: list[dict[str, Any]], server_jobs: list[dict[str, Any]],
                 update_passwords: bool = False) -> list[Change]:
    """Projects first, then jobs, in file order. Raises SpecFileError on an unknown project name."""
    projects = _by_name(spec.path, "project", server_projects)
    jobs = _by_name(spec.path, "job", [j for j in server_jobs if not j.get("archived")])
    plan: list[Change] = []
    for p in spec.projects:
        current = projects.get(p.name)
        if current is None:
            plan.append(Change("create", "project", p.name))
            continue
        fields = diff({k: current.get(k) for k in PROJECT_FIELDS} | {"url": url_without_password(current.get("url"))},
                      project_view(p))
        if has_password(p) and (update_passwords or not current.get("has_password")):
            fields.append("password")
        plan.append(Change("update" if fields else "unchanged", "project", p.name, tuple(fields), current["id"]))
    known = set(projects) | {p.name for p in spec.projects}
    names = {item["id"]: item["name"] for item in server_projects}
    for job in spec.jobs:
        for where, project in [*((f"steps[{i}].project", n) for i, n in enumerate(job.step_projects)),
                               ("destination.project", job.destination_project)]:
            if project not in known:
                raise SpecFileError(spec.path, f'job "{job.name}"', f'unknown project "{project}" (define it under '
                                    "projects: or create it first)", field_path=where)
        current = jobs.get(job.name)
        if current is None:
            plan.append(Change("create", "job", job.name))
            continue
        fields = diff(server_job_view(current, names), job.named_dump())
        plan.append(Change("update" if fields else "unchanged", "job", job.name, tuple(fields), current["id"]))
    return plan


def summary(plan: list[Change]) -> str:
    counts = {a: sum(1 for c in plan if c.action == a) for a in SYMBOLS}
    return f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['unchanged']} unchanged."
