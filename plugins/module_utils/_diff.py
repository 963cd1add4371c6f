# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""How every module ends: ``diff`` only in diff mode, with its secrets hidden.

A module's logic always builds its ``diff`` (``before`` and ``after``, as in check mode); the
module hands its result to :func:`exit_result`, which keeps the diff only when the task runs with
``--diff`` (``diff: true``) and replaces every secret in it by :data:`PLACEHOLDER`.  A secret is
the value of an option marked ``no_log`` (anywhere in the diff, also inside text), or a string
under a key that names one (``password``, ``*_token``, ``psk``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

PLACEHOLDER = "********"

# A key names a secret when it is one of these or ends with ``_`` and one of these.
SECRET_KEYS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "psk",
    "private_key",
    "enrollment_key",
    "api_key",
)


def is_secret_key(key: Any) -> bool:
    """Whether a dict key names a secret (``password``, ``smtp_password``, ``admin_token``...)."""
    if not isinstance(key, str):
        return False
    name = key.lower().replace("-", "_")
    return any(name == word or name.endswith("_" + word) for word in SECRET_KEYS)


def masked(value: Any, hidden: Iterable[str] = (), *, _key: Any = None) -> Any:
    """``value`` (dicts, lists and text, nested) with every secret replaced by :data:`PLACEHOLDER`.

    ``hidden`` are values that must not appear, such as a module's ``no_log_values``: each
    occurrence is replaced, inside longer text too.  A non-empty string under a secret key is
    replaced whole, unless it already starts with the placeholder (``******** (new)``).
    Other values (numbers, booleans such as ``psk_set``, ``None``) are kept.
    """
    hidden = tuple(sorted((h for h in hidden if h), key=len, reverse=True))
    return _masked(value, hidden, _key)


def _masked(value: Any, hidden: tuple[str, ...], key: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _masked(v, hidden, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v, hidden, key) for v in value]
    if not isinstance(value, str):
        return value
    if value and is_secret_key(key) and not value.startswith(PLACEHOLDER):
        return PLACEHOLDER
    for secret in hidden:
        if secret in value:
            value = value.replace(secret, PLACEHOLDER)
    return value


def diff_result(module: Any, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with its ``diff`` kept only in diff mode (``module._diff``), masked."""
    out = dict(result)
    diff = out.pop("diff", None)
    if getattr(module, "_diff", False) and diff is not None:
        out["diff"] = masked(diff, getattr(module, "no_log_values", ()))
    return out


def exit_result(module: Any, result: dict[str, Any]) -> NoReturn:
    """End the module with ``result``: its ``warnings`` become module warnings, its ``diff`` goes
    through :func:`diff_result`."""
    out = diff_result(module, result)
    for warning in out.pop("warnings", None) or []:
        module.warn(warning)
    module.exit_json(**out)
    raise AssertionError("unreachable: exit_json exits")  # pragma: no cover
