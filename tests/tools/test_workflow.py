""".github/workflows/benchmarks.yml: least-privilege permissions, per job."""

from __future__ import annotations

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="reading the workflow needs PyYAML (installed with asv, the bench extra)")

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "benchmarks.yml"
#: What each job may do: only the history job writes (it commits the new results).
EXPECTED = {"history": {"contents": "write"}, "gate": {"contents": "read"}}


def test_permissions_are_per_job_and_least_privilege():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"] == {}, "top-level permissions reach every job; grant them per job"
    assert {name: job.get("permissions") for name, job in workflow["jobs"].items()} == EXPECTED


def test_only_the_push_job_writes():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    writers = [name for name, job in jobs.items() if "write" in (job.get("permissions") or {}).values()]
    assert writers == ["history"] and jobs["history"]["if"] == "github.event_name == 'push'"
