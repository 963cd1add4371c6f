"""Write docs/role-variables.md from every role's meta/argument_specs.yml (the one source of truth).

.venv/bin/python docs/gen_role_variables.py          # rewrite the file
.venv/bin/python docs/gen_role_variables.py --check  # exit 1 when it is out of date (make test runs this)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "role-variables.md"


def _cell(value: Any) -> str:
    text = " ".join(value) if isinstance(value, list) else str(value)
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _default(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return "**required**" if spec.get("required") else ""
    text = yaml.safe_dump(spec["default"], default_flow_style=True, width=10_000)
    return f"`{text.strip().removesuffix('...').strip()}`"


def render() -> str:
    lines = [
        "# Role variables",
        "",
        "Generated from each role's `meta/argument_specs.yml` by `docs/gen_role_variables.py`; do not edit.",
        "Ansible checks these specs when a role starts, so a wrong type or an unknown choice fails first.",
        "",
    ]
    for role in sorted(p for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file()):
        if role.name.startswith("_"):
            continue
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        for entry, spec in specs.items():
            title = f"tenantry.msp.{role.name}" + ("" if entry == "main" else f" (tasks_from: {entry})")
            lines += [f"## {title}", "", _cell(spec.get("short_description", "")), ""]
            lines += ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
            for name, option in sorted((spec.get("options") or {}).items()):
                kind = option.get("type", "str") + (f" of {option['elements']}" if option.get("elements") else "")
                if option.get("choices"):
                    kind += " (" + ", ".join(map(str, option["choices"])) + ")"
                lines.append(f"| `{name}` | {kind} | {_default(option)} | {_cell(option.get('description', ''))} |")
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(REPO)} is out of date: run .venv/bin/python docs/gen_role_variables.py")
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
