"""Typed snapshots that travel inside wire messages (:mod:`shared.messages`).

A run request carries the job as a whole :class:`~shared.jobspec.JobSpec` (every field,
so a field added to JobSpec and to :func:`shared.store.jobs.job_spec` reaches the workers
with no change here) and each project as a :class:`ProjectSnapshot`: the connection with
its secrets still encrypted. They are decoded here, once, into typed objects; a snapshot a
worker does not understand (an unknown job field, a missing project field) is a
:class:`~shared.errors.DecodeError` and the message is dead-lettered, never half-read.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.connections import ProjectSpec
from shared.errors import ConfigError
from shared.jobspec import STORED, JobSpec
from shared.secrets import SecretBox

ENCRYPTED_PREFIX = "fernet:"  # a secret option is stored and sent as ``fernet:<token>``


def decrypt_option(value: Any, box: SecretBox) -> Any:
    """An option value in clear: ``fernet:<token>`` decrypted, anything else as it is."""
    if isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX):
        return box.decrypt(value.removeprefix(ENCRYPTED_PREFIX))
    return value


class ProjectSnapshot(BaseModel):
    """A project's connection as a run request carries it: secrets encrypted (``password_enc``,
    ``fernet:`` options); only a worker holding the key decrypts them, in memory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    name: str
    engine: str | None = None
    url: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    options: dict[str, Any] = {}
    password_enc: str | None = None

    def connection(self, box: SecretBox) -> ProjectSpec:
        """The ProjectSpec with the secrets decrypted (worker side only).

        Raises ConfigError when the stored project breaks a rule made after it was saved
        (e.g. an option no longer allowed): the message names the rule, never a value."""
        data: dict[str, Any] = {"name": self.name, "engine": self.engine, "url": self.url, "username": self.username}
        if not self.url:
            data.update(host=self.host, port=self.port, database=self.database)
        data["options"] = {k: decrypt_option(v, box) for k, v in self.options.items()}
        data["password"] = box.decrypt(self.password_enc)
        try:
            return ProjectSpec.model_validate({k: v for k, v in data.items() if v is not None})
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}"
                                for e in exc.errors())
            raise ConfigError(f"project {self.name!r} needs editing: {reasons}") from None


def dump_job(job: JobSpec) -> dict[str, Any]:
    """The whole job as it travels (JSON-safe)."""
    return job.model_dump(mode="json")


def load_job(data: Any) -> JobSpec:
    """A job snapshot back as a JobSpec. Raises ValidationError (a field this release does not
    know, or a value it refuses). Stored jobs are read with the ``stored`` leniency."""
    return JobSpec.model_validate(data, context={STORED: True})


def dump_projects(projects: Mapping[int, ProjectSnapshot]) -> dict[int, dict[str, Any]]:
    return {int(pid): p.model_dump() for pid, p in projects.items()}


def load_projects(data: Any) -> dict[int, ProjectSnapshot]:
    """Project id → snapshot. Raises ValidationError / ValueError when malformed."""
    if not isinstance(data, Mapping):
        raise ValueError("projects must be a map of project id to snapshot")
    return {int(pid): ProjectSnapshot.model_validate(snap) for pid, snap in data.items()}
