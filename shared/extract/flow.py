"""The flow graph of a job: steps as nodes, ``@resultN`` references as edges."""
from __future__ import annotations

from collections.abc import Mapping

from shared.extract.planner import references
from shared.jobspec import StepSpec


def flow(steps: list[StepSpec], projects: Mapping[int, dict], *, transform: str | None = None) -> dict:
    """``{"nodes": [...], "edges": [{"from": n, "to": k}]}`` with 1-based step numbers as ids.

    ``projects`` maps a project id to a dict with at least ``name`` and ``engine``; a
    missing project gives ``None`` for both. References to the same, later or missing
    steps are not edges (validation reports them). With a ``transform``, ``"transform":
    {"id": "transform", "references": [N, …]}`` (the steps it reads) sits between the last
    step and the destination; without one, ``"transform": None``.
    """
    nodes, edges = [], []
    for k, step in enumerate(steps, start=1):
        project = projects.get(step.project_id) or {}
        engine = project.get("engine")
        nodes.append({"id": k, "step": k, "name": step.name, "project_id": step.project_id,
                      "project_name": project.get("name"), "engine": getattr(engine, "value", engine)})
        edges += [{"from": n, "to": k} for n in references(steps, k)]
    return {"nodes": nodes, "edges": edges, "transform": transform_node(transform, len(steps))}


def transform_node(transform: str | None, step_count: int) -> dict | None:
    """The transform's place in the flow: the existing steps it reads (None without a transform)."""
    if transform is None or not transform.strip():
        return None
    from shared.extract.tokenizer import find_references

    refs = sorted({n for n in find_references(transform, flavor="postgresql") if 1 <= n <= step_count})
    return {"id": "transform", "references": refs}
