"""``datamig jobs apply``: print the plan, then create and update through the API."""
from __future__ import annotations

from typing import TextIO

from services.cliapp.client import ApiClient, ApiError
from services.cliapp.plan import Change, compute_plan, summary
from services.cliapp.specfile import SpecFile, SpecFileError, field_path


def _api_error(spec: SpecFile, change: Change, exc: ApiError) -> SpecFileError:
    """A 422 (or other refusal) named by file, item and field, with secrets redacted."""
    item = f'{change.kind} "{change.name}"'
    if exc.status_code == 422 and isinstance(exc.detail, list) and exc.detail:
        first = exc.detail[0] if isinstance(exc.detail[0], dict) else {"msg": str(exc.detail[0])}
        msg = spec.redact(str(first.get("msg", "")))
        more = len(exc.detail) - 1
        return SpecFileError(spec.path, item, msg + (f" (and {more} more)" if more else ""),
                             field_path=field_path(first.get("loc") or []))
    return SpecFileError(spec.path, item, spec.redact(f"the API refused it: HTTP {exc.status_code}: {exc.detail}"))


def _apply_one(client: ApiClient, spec: SpecFile, change: Change, project_ids: dict[str, int]) -> int:
    if change.kind == "project":
        body = next(p for p in spec.projects if p.name == change.name).model_dump(mode="json", exclude_none=True)
    else:
        job = next(j for j in spec.jobs if j.name == change.name)
        body = job.to_spec(project_ids).model_dump(mode="json")
    path = f"/api/{change.kind}s"
    if change.action == "create":
        return client.post(path, body)["id"]
    return client.put(f"{path}/{change.server_id}", body)["id"]


def apply_spec(client: ApiClient, spec: SpecFile, *, out: TextIO, dry_run: bool = False,
               update_passwords: bool = False) -> list[Change]:
    """Print the plan and (unless ``dry_run``) carry it out. Raises SpecFileError, CliError."""
    server_projects = client.get("/api/projects")
    plan = compute_plan(spec, server_projects=server_projects, server_jobs=client.get("/api/jobs"),
                        update_passwords=update_passwords)
    for change in plan:
        print(change.line(), file=out)
    print(summary(plan), file=out)
    if dry_run:
        print("Dry run: nothing was changed.", file=out)
        return plan
    project_ids = {p["name"]: p["id"] for p in server_projects}
    for change in plan:
        if change.action == "unchanged":
            continue
        try:
            new_id = _apply_one(client, spec, change, project_ids)
        except ApiError as exc:
            raise _api_error(spec, change, exc) from None
        if change.kind == "project":
            project_ids[change.name] = new_id
        verb = "created" if change.action == "create" else "updated"
        print(f'{verb} {change.kind} "{change.name}" (id {new_id})', file=out)
    return plan
