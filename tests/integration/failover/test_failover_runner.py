"""AWX/AAP runs playbooks through ansible-runner: run test_failover.yml that way, with exactly the
extra vars its job template's survey produces, and find the structured results in the artifacts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import ansible_runner
import failoverlab as fl
import pytest
import yaml
from support import REPO, ansible_env

pytestmark = pytest.mark.integration


def survey_answers(survey: str, answers: dict[str, Any]) -> dict[str, Any]:
    """Extra vars as AWX builds them from a survey: one per question, by its variable, nothing else."""
    spec = yaml.safe_load((REPO / "awx" / "surveys" / f"{survey}.yml").read_text())
    questions = {q["variable"]: q for q in spec["spec"]}
    assert set(answers) <= set(questions), f"not in the survey: {set(answers) - set(questions)}"
    missing = [v for v, q in questions.items() if q["required"] and v not in answers]
    assert not missing, f"required by the survey: {missing}"
    return answers


def test_test_failover_under_ansible_runner(lab_tenant: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ansible-runner finds ansible-playbook on PATH, as in an execution environment.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    p = lab_tenant("rnr", vms=3)
    inventory = fl.write_inventory(tmp_path / "inventory", p.vcenter, [(p.data, p.target)])
    chosen = p.vms[:2]
    extravars = survey_answers("test_failover", {"tenant": p.name, "vms": "\n".join(chosen)})
    extravars |= {"failover_journal_dir": str(tmp_path / "journal"), "failover_report_dir": str(tmp_path / "reports")}
    env = {k: v for k, v in ansible_env().items() if k.startswith("ANSIBLE_") and k != "ANSIBLE_STDOUT_CALLBACK"}
    (tmp_path / "runner").mkdir()
    run = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"),
        playbook=str(REPO / "playbooks" / "test_failover.yml"),
        inventory=str(inventory),
        extravars=extravars,
        envvars=env,
        quiet=True,
    )
    assert run.status == "successful", run.stdout.read()[-3000:]

    # The artifacts (what AWX stores per job) hold the module's structured report.
    reports = [
        e["event_data"]["res"]["report"]
        for e in run.events
        if e.get("event") == "runner_on_ok" and isinstance(e.get("event_data", {}).get("res", {}).get("report"), dict)
    ]
    assert reports, "no event carries the failover report"
    report = reports[-1]
    assert sorted(report["vms"]) == sorted(chosen)
    assert report["rto_seconds"] > 0
    events_dir = Path(run.config.artifact_dir) / "job_events"
    assert any("rto_seconds" in f.read_text() for f in events_dir.glob("*.json"))
    # The replication target was left as it was: the copies run in production.
    assert sorted(p.production_vms("test-failover")) == sorted(chosen)
    json.dumps(report)  # plain data, as AWX keeps it
