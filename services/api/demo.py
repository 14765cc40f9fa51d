"""The ready demo of the single-process mode: two SQLite databases and one job.

Created on first start when ``DM_DEMO`` is on (``make run`` turns it on); never touches
an existing project or job of the same name.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.connections import ProjectSpec
from shared.jobspec import JobSpec
from shared.secrets import SecretBox
from shared.store.jobs import apply_job
from shared.store.models import JobRow, ProjectRow
from shared.store.projects import apply_project

DEMO_ROWS = 1000
SOURCE_PROJECT = "Demo source (SQLite)"
DEST_PROJECT = "Demo destination (SQLite)"
DEMO_JOB = "Demo: copy customers"


def _make_source(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS customers (customer_id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                   " email TEXT, country TEXT, active INTEGER NOT NULL, created_at TEXT)")
        if db.execute("SELECT count(*) FROM customers").fetchone()[0] == 0:
            countries = ["DE", "FR", "BR", "US", "JP", "IN", "NG"]
            db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", [
                (i, f"Customer {i}", f"customer{i}@example.com", countries[i % len(countries)], int(i % 5 != 0),
                 f"2026-01-{1 + i % 28:02d} 12:00:00") for i in range(1, DEMO_ROWS + 1)])


def _make_destination(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS active_customers (customer_id INTEGER PRIMARY KEY,"
                   " name TEXT NOT NULL, email TEXT, country TEXT, created_at TEXT)")


def ensure_demo(session: Session, data_dir: Path, box: SecretBox) -> None:
    """Create the demo databases, projects and job if they are missing."""
    if session.scalar(sa.select(JobRow.id).where(JobRow.name == DEMO_JOB)):
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    src, dst = (data_dir / "demo_source.sqlite").resolve(), (data_dir / "demo_destination.sqlite").resolve()
    _make_source(src)
    _make_destination(dst)
    ids = []
    for name, path in ((SOURCE_PROJECT, src), (DEST_PROJECT, dst)):
        row = session.scalar(sa.select(ProjectRow).where(ProjectRow.name == name))
        if row is None:
            row = apply_project(ProjectRow(), ProjectSpec(name=name, url=f"sqlite:///{path}"), box,
                                keep_password=False)
            session.add(row)
            session.flush()
        ids.append(row.id)
    spec = JobSpec(
        name=DEMO_JOB, description="Copies the active customers of the demo source into the demo destination.",
        steps=[{"name": "Active customers", "project_id": ids[0],
                "sql": "SELECT customer_id, name, email, country, created_at FROM customers WHERE active = 1"}],
        destination={"project_id": ids[1], "table": "active_customers", "mode": "upsert"},
    )
    session.add(apply_job(JobRow(), spec))
    session.commit()
