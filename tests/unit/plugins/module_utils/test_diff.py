"""The one way every module returns ``diff``: only in diff mode, secrets replaced by the placeholder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.tenantry.msp.plugins.module_utils._diff import (
    PLACEHOLDER,
    diff_result,
    exit_result,
    is_secret_key,
    masked,
)

SPEC: dict[str, Any] = {"name": {"type": "str"}, "psk": {"type": "str", "no_log": True}}


@contextmanager
def module(diff: bool, **params: Any) -> Iterator[AnsibleModule]:
    """A real AnsibleModule, built the way Ansible runs one (``_ansible_diff`` is what ``--diff`` sets)."""
    with patch_module_args(dict(params, _ansible_diff=diff)):
        yield AnsibleModule(argument_spec=SPEC, supports_check_mode=True)


def exit_output(mod: AnsibleModule, result: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    with pytest.raises(SystemExit) as exc:
        exit_result(mod, result)
    assert exc.value.code == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("smtp_password", True),
        ("admin_token", True),
        ("webhook_secret", True),
        ("psk", True),
        ("enrollment_key", True),
        ("Private-Key", True),
        ("psk_set", False),
        ("tokens_issued", False),
        ("key", False),
        ("ssh_public_key", False),
        ("username", False),
        (3, False),
    ],
)
def test_secret_keys(key: Any, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_masked_hides_secret_keys_and_no_log_values_anywhere() -> None:
    value = {
        "user": {"name": "acme-it", "password": "hunter2!", "disabled": False},
        "direct_connect": {"auth": "psk", "psk": "k" * 20, "psk_set": True},
        "lines": ["binding: vt-1 tenant=acme psk=s3cr3t-value", "plain"],
        "empty_password": "",
        "admin_token": None,
        "count": 3,
        "tuple": ("s3cr3t-value",),
    }
    assert masked(value, {"s3cr3t-value", ""}) == {
        "user": {"name": "acme-it", "password": PLACEHOLDER, "disabled": False},
        "direct_connect": {"auth": "psk", "psk": PLACEHOLDER, "psk_set": True},
        "lines": ["binding: vt-1 tenant=acme psk=" + PLACEHOLDER, "plain"],
        "empty_password": "",
        "admin_token": None,
        "count": 3,
        "tuple": [PLACEHOLDER],
    }
    # A value that already says "set" keeps its note; the input is not changed.
    shown = {"password": PLACEHOLDER + " (new)"}
    assert masked(shown) == shown and masked("text") == "text"


def test_no_diff_without_diff_mode(capsys: pytest.CaptureFixture[str]) -> None:
    result = {"changed": True, "diff": {"before": {}, "after": {"name": "acme"}}}
    with module(False, name="acme") as mod:
        assert diff_result(mod, result) == {"changed": True}
        assert result["diff"] == {"before": {}, "after": {"name": "acme"}}  # the caller's dict is left as it was
        out = exit_output(mod, result, capsys)
    assert out["changed"] is True and "diff" not in out


def test_masked_diff_in_diff_mode(capsys: pytest.CaptureFixture[str]) -> None:
    psk = "a pre-shared key of 32 characters"
    result = {
        "changed": True,
        "warnings": ["portgroup tenant is kept"],
        "diff": {"before": {"psk": "old key value"}, "after": {"note": "set to " + psk, "psk_set": True}},
    }
    warned: list[str] = []
    with module(True, name="acme", psk=psk) as mod:
        # How a module records a warning depends on what else this process imported (the controller shows it).
        mod.warn = warned.append
        out = exit_output(mod, result, capsys)
    assert out["diff"] == {
        "before": {"psk": PLACEHOLDER},
        "after": {"note": "set to " + PLACEHOLDER, "psk_set": True},
    }
    assert warned == ["portgroup tenant is kept"]  # module warnings, not a ``warnings`` key of the result
    assert psk not in json.dumps(out)


def test_no_diff_given_none_returned(capsys: pytest.CaptureFixture[str]) -> None:
    with module(True) as mod:
        out = exit_output(mod, {"changed": False, "tenants": []}, capsys)
    assert "diff" not in out and out["tenants"] == []
