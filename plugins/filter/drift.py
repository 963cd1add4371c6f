# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Readable drift for playbooks/audit.yml: what differs between a module's diff ``before`` and ``after``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Keys that name an item of a list (a permission's entity, a route's network...), in order of preference.
_LABELS = ("name", "entity", "network", "datastore", "user", "mac")


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return "{" + ", ".join("%s: %s" % (k, _text(v)) for k, v in sorted(value.items())) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def _label(item: Any) -> str:
    if isinstance(item, Mapping):
        for key in _LABELS:
            if item.get(key) is not None:
                return _text(item[key])
    return _text(item)


def _describe(before: Any, after: Any) -> str:
    if before is None:
        return "missing"
    if after is None:
        return "present, not in the tenant file"
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        return ", ".join(
            "%s %s" % (key, _describe(before.get(key), after.get(key)))
            for key in sorted(set(before) | set(after), key=str)
            if before.get(key) != after.get(key)
        )
    lists = (isinstance(v, Sequence) and not isinstance(v, str) for v in (before, after))
    if all(lists):
        missing = [_label(i) for i in after if i not in before]
        extra = [_label(i) for i in before if i not in after]
        parts = (["missing " + ", ".join(missing)] if missing else []) + (
            ["not in the tenant file " + ", ".join(extra)] if extra else []
        )
        return "; ".join(parts) or "in another order"
    return "%s -> %s" % (_text(before), _text(after))


def drift_summary(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """One line per top-level part that differs, for example ``services: TSM-SSH running true -> false``."""
    before = before or {}
    after = after or {}
    return [
        "%s: %s" % (key, _describe(before.get(key), after.get(key)))
        for key in sorted(set(before) | set(after), key=str)
        if before.get(key) != after.get(key)
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"drift_summary": drift_summary}
