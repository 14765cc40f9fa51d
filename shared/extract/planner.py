"""Planning a multi-step extraction: which results are pushed down as CTEs, which move.

For the step whose result is wanted, every referenced step on the same project is
inlined as a CTE (transitively), so the database runs one query and no data moves.
A referenced step on another project is planned as its own session whose result is
materialised into a temporary table of the referencing session. Step numbers are
1-based, as users write them (``@result1``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.extract.tokenizer import find_references, rewrite_references, split_leading_with, strip_statement
from shared.jobspec import StepSpec

CTE_NAME = "dm_result{n}"


@dataclass
class SessionPlan:
    """One source session: the step it produces, CTE steps inlined, results it needs moved in."""

    step: int
    project_id: int
    ctes: list[int] = field(default_factory=list)
    temps: dict[int, "SessionPlan"] = field(default_factory=dict)

    def temp_count(self) -> int:
        """Temporary tables the whole plan creates (0 means one query per session, no data moves)."""
        return sum(1 + p.temp_count() for p in self.temps.values())


def step_label(steps: list[StepSpec], n: int) -> str:
    """``step 2 'Join Orders'`` for messages."""
    return f"step {n} {steps[n - 1].name!r}" if 1 <= n <= len(steps) else f"step {n}"


def reference_problems(steps: list[StepSpec], flavors: Mapping[int, str] | None = None) -> list[tuple[int, str]]:
    """``(step, message)`` for each reference to the same step, a later step or a missing step."""
    problems: list[tuple[int, str]] = []
    for k, step in enumerate(steps, start=1):
        flavor = (flavors or {}).get(step.project_id, "generic")
        for n in dict.fromkeys(find_references(step.sql, flavor=flavor)):
            where = f"{step_label(steps, k)}: @result{n}"
            if n == k:
                problems.append((k, f"{where} refers to the step itself; a step may only use earlier results"))
            elif n > len(steps) or n < 1:
                problems.append((k, f"{where} refers to a missing step (the job has {len(steps)} steps)"))
            elif n > k:
                problems.append((k, f"{where} refers to a later step; step {k} may use @result1..@result{k - 1}"))
    return problems


def check_references(steps: list[StepSpec], flavors: Mapping[int, str] | None = None) -> list[str]:
    """Messages naming the step for references to the same, a later or a missing step (empty when valid).

    ``flavors`` (project id → tokenizer flavor) refines string/comment rules per engine.
    """
    return [message for _, message in reference_problems(steps, flavors)]


def depends_on(steps: list[StepSpec], k: int, flavors: Mapping[int, str] | None = None) -> set[int]:
    """Step ``k`` and every earlier step it references, transitively."""
    out, todo = {k}, [k]
    while todo:
        for n in references(steps, todo.pop(), flavors):
            if n not in out:
                out.add(n)
                todo.append(n)
    return out


def references(steps: list[StepSpec], n: int, flavors: Mapping[int, str] | None = None) -> list[int]:
    """The distinct earlier steps step ``n`` references, ascending."""
    step = steps[n - 1]
    flavor = (flavors or {}).get(step.project_id, "generic")
    return sorted({r for r in find_references(step.sql, flavor=flavor) if 1 <= r < n})


def plan(steps: list[StepSpec], final: int, flavors: Mapping[int, str] | None = None) -> SessionPlan:
    """The session plan producing step ``final``'s result (call :func:`check_references` first)."""
    project = steps[final - 1].project_id
    root = SessionPlan(step=final, project_id=project)
    seen: set[int] = set()

    def visit(k: int) -> None:
        for n in references(steps, k, flavors):
            if steps[n - 1].project_id == project:
                if n not in seen:
                    seen.add(n)
                    visit(n)
            elif n not in root.temps:
                root.temps[n] = plan(steps, n, flavors)

    visit(final)
    root.ctes = sorted(seen)
    return root


def build_sql(steps: list[StepSpec], p: SessionPlan, names: Mapping[int, str], *, flavor: str = "generic",
              watermark: str | None = None) -> str:
    """The one statement a session runs: CTEs for inlined steps, references renamed via ``names``.

    ``names`` maps every referenced step (CTE or temporary table) to its quoted SQL name;
    ``watermark`` is the engine's reference to the bound ``@watermark`` value.
    The step's own ``WITH`` list, if any, follows ours in the same ``WITH``.
    """
    def rewrite(n: int) -> str:
        return rewrite_references(strip_statement(steps[n - 1].sql, flavor=flavor), dict(names), flavor=flavor,
                                  watermark=watermark)

    body = rewrite(p.step)
    if not p.ctes:
        return body
    ctes = ",\n".join(f"{names[n]} AS (\n{rewrite(n)}\n)" for n in p.ctes)
    head = split_leading_with(body, flavor=flavor)
    if head is None:
        return f"WITH {ctes}\n{body}"
    return f"{head[0]} {ctes},\n{head[1].lstrip()}"
