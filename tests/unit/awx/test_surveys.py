"""The AWX/AAP job templates as code: surveys are valid survey specs and match what the playbook wires."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from support import REPO

AWX = REPO / "awx"
SCHEMA = json.loads((REPO / "tests" / "schemas" / "awx_survey_spec.schema.json").read_text())
SURVEYS = sorted((AWX / "surveys").glob("*.yml"))


def templates() -> list[dict[str, Any]]:
    play = yaml.safe_load((AWX / "configure.yml").read_text())[0]
    return list(play["vars"]["__tenantry_awx_templates"])


@pytest.mark.parametrize("path", SURVEYS, ids=lambda p: p.stem)
def test_survey_is_a_valid_spec(path: Path) -> None:
    spec = yaml.safe_load(path.read_text())
    jsonschema.validate(spec, SCHEMA)
    variables = [q["variable"] for q in spec["spec"]]
    assert len(variables) == len(set(variables)), f"{path.name}: a variable is asked twice"
    for q in spec["spec"]:
        if q["type"] in ("multiplechoice", "multiselect") and q.get("default"):
            choices = q["choices"] if isinstance(q["choices"], list) else q["choices"].split("\n")
            assert set(str(q["default"]).split("\n")) <= set(choices)
        if "min" in q and "max" in q:
            assert q["min"] <= q["max"]


def test_schema_catches_broken_specs() -> None:
    good = yaml.safe_load((AWX / "surveys" / "failover.yml").read_text())
    for broken in (
        {**good, "spec": []},
        {**good, "spec": [{**good["spec"][0], "type": "dropdown"}]},
        {**good, "spec": [{k: v for k, v in good["spec"][0].items() if k != "variable"}]},
        {**good, "spec": [{**good["spec"][0], "type": "multiplechoice"}]},
        {**good, "spec": [{**good["spec"][2], "default": "ten"}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


def test_every_template_has_its_survey_and_every_survey_a_template() -> None:
    wired = {t["survey"] for t in templates()}
    assert wired == {p.stem for p in SURVEYS}
    assert {t["playbook"] for t in templates()} == {f"playbooks/{p.stem}.yml" for p in SURVEYS}
