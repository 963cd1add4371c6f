"""One interface for the two ways a run is executed: ansible-runner here, or AWX/AAP job templates."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

Emit = Callable[[dict[str, Any]], None]


class JobError(Exception):
    """A job could not be started (message for the operator)."""


@dataclass
class JobSpec:
    run_id: str
    kind: str
    playbook: str  # file name under playbooks/
    title: str  # what AWX calls its job template (after the prefix)
    tenant: str | None
    extravars: dict[str, Any]
    timeout: float
    directory: Path  # where the run's files are kept
    unsafe: set[str] = field(default_factory=set)  # extra vars that must never be templated


@dataclass
class JobOutcome:
    status: str  # successful | failed | canceled
    ref: str = ""
    rc: int | None = None
    message: str = ""


class Backend(Protocol):
    name: str

    async def run(self, spec: JobSpec, emit: Emit, started: Callable[[str], None]) -> JobOutcome:
        """Run ``spec`` to its end, calling ``emit`` for each event and ``started`` with the backend's reference."""
        ...


def unsafe_yaml(value: Any) -> str:
    """``value`` as YAML in which every string carries Ansible's ``!unsafe`` tag (never templated).

    JSON scalars are YAML scalars, so this is JSON with the tag in front of each string.
    """
    if isinstance(value, str):
        return "!unsafe " + json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {unsafe_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(unsafe_yaml(v) for v in value) + "]"
    return json.dumps(value)


def extravars_yaml(extravars: dict[str, Any], unsafe: set[str]) -> str:
    """The extra vars file: the keys in ``unsafe`` (anything a user typed) are marked ``!unsafe``."""
    parts = [
        f"{json.dumps(k)}: {unsafe_yaml(v) if k in unsafe else json.dumps(v)}" for k, v in sorted(extravars.items())
    ]
    return "{" + ", ".join(parts) + "}\n"
