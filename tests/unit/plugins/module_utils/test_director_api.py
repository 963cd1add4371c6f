"""clients/director_api.py: the pure comparison helpers, and error mapping against a real HTTP peer on loopback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils.clients.director_api import (
    AuthenticationFailed,
    Conflict,
    ConnectionFailed,
    ConnectionParams,
    DirectorApiError,
    DirectorClient,
    InvalidSettings,
    NotFound,
    Refused,
    apply_view,
    coerce_setting,
    settings_changes,
    tenant_changes,
    tenant_create_spec,
    tenant_view,
)

REGISTRY = {
    "setup_port": {"type": "integer", "applies": "restart"},
    "uplink_port": {"type": "integer", "applies": "live"},
    "heartbeat_interval": {"type": "number", "applies": "live"},
    "tls_min_version": {"type": "string", "applies": "live"},
}
VALUES = {"setup_port": 4443, "uplink_port": 6702, "heartbeat_interval": 15.0, "tls_min_version": "1.2"}


# ---------------------------------------------------------------------- settings
def test_settings_changes_only_what_differs_after_coercion() -> None:
    assert settings_changes(VALUES, REGISTRY, {"uplink_port": "6702", "heartbeat_interval": 15}) == {}
    assert settings_changes(VALUES, REGISTRY, {"uplink_port": "7702", "tls_min_version": "1.3"}) == {
        "uplink_port": 7702,
        "tls_min_version": "1.3",
    }


def test_unknown_settings_name_what_is_allowed() -> None:
    with pytest.raises(
        InvalidSettings,
        match=r"unknown Expert Setting\(s\) bogus, nope; allowed settings: "
        r"heartbeat_interval, setup_port, tls_min_version, uplink_port",
    ):
        settings_changes(VALUES, REGISTRY, {"nope": 1, "bogus": 2, "uplink_port": 1})


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("integer", "12", 12),
        ("integer", 12.0, 12),
        ("number", "2.5", 2.5),
        ("number", 3, 3.0),
        ("string", 1.3, "1.3"),
        ("boolean", "yes", True),
        ("boolean", "off", False),
    ],
)
def test_coerce_setting(kind: str, raw: Any, expected: Any) -> None:
    value = coerce_setting("x", raw, {"type": kind})
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [("integer", "seven"), ("integer", 1.5), ("integer", True), ("number", "fast"), ("boolean", "maybe")],
)
def test_coerce_setting_refuses_wrong_types(kind: str, raw: Any) -> None:
    with pytest.raises(InvalidSettings, match="is not a valid " + kind):
        coerce_setting("x", raw, {"type": kind})


# ---------------------------------------------------------------------- tenants
TENANT = {
    "id": "t-1",
    "name": "acme",
    "kind": "remote",
    "description": "Acme",
    "contact": "it@acme.example",
    "workload_quota": 5,
    "revoked_at": None,
    "direct_connect": {"address": "gw.acme.example:9446", "auth": "psk", "psk_set": True},
    "status": {"online": True},
}


def test_tenant_changes_manage_only_given_options() -> None:
    assert tenant_changes(TENANT, {"name": "acme", "description": None, "contact": None}) == {}
    assert tenant_changes(TENANT, {"description": "Acme Corp", "workload_quota": 5}) == {"description": "Acme Corp"}


def test_tenant_changes_direct_connect() -> None:
    same = {"direct_connect": {"address": "gw.acme.example:9446", "auth": "psk", "psk": "0123456789abcdef"}}
    # A PSK is stored already: not sent again (the API cannot compare it) unless update_psk.
    assert tenant_changes(TENANT, same) == {}
    assert tenant_changes(TENANT, same, update_psk=True) == {"direct_connect": same["direct_connect"]}
    moved = {"direct_connect": {"address": "gw2.acme.example:9446", "auth": "certificate", "psk": None}}
    assert tenant_changes(TENANT, moved) == {
        "direct_connect": {"address": "gw2.acme.example:9446", "auth": "certificate"}
    }
    assert tenant_changes(TENANT, {"direct_connect": {}}) == {"direct_connect": None}
    assert tenant_changes(dict(TENANT, direct_connect=None), {"direct_connect": {"address": None}}) == {}
    no_psk_yet = dict(TENANT, direct_connect={"address": "gw.acme.example:9446", "auth": "psk", "psk_set": False})
    assert tenant_changes(no_psk_yet, same)["direct_connect"]["psk"] == "0123456789abcdef"


def test_tenant_create_spec_and_views_never_show_secrets() -> None:
    spec = tenant_create_spec(
        {
            "name": "acme",
            "kind": None,
            "description": "Acme",
            "contact": None,
            "workload_quota": 3,
            "direct_connect": {"address": "gw:9446", "auth": "psk", "psk": "0123456789abcdef"},
        }
    )
    assert spec == {
        "name": "acme",
        "kind": "remote",
        "description": "Acme",
        "workload_quota": 3,
        "direct_connect": {"address": "gw:9446", "auth": "psk", "psk": "0123456789abcdef"},
    }
    view = tenant_view(TENANT)
    assert view == {
        "name": "acme",
        "kind": "remote",
        "description": "Acme",
        "contact": "it@acme.example",
        "workload_quota": 5,
        "revoked": False,
        "direct_connect": {"address": "gw.acme.example:9446", "auth": "psk", "psk_set": True},
    }
    after = apply_view(view, {"direct_connect": spec["direct_connect"], "description": "new"})
    assert "0123456789abcdef" not in json.dumps(after)
    assert after["direct_connect"]["psk_set"] is True and after["description"] == "new"
    assert tenant_view(None) == {}


# ---------------------------------------------------------------------- transport against a real peer
class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, bytes]] = {}
    seen: list[dict[str, Any]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).seen.append(
            {
                "method": self.command,
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "body": json.loads(body) if body else None,
            }
        )
        status, payload = type(self).answers.get(self.path.split("?")[0], (404, b'{"detail": "no such tenant"}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def peer() -> Iterator[str]:
    _Handler.answers = {}
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def client(url: str, token: str = "s3cret-token") -> DirectorClient:
    return DirectorClient(ConnectionParams(url=url, token=token, timeout=5))


def test_requests_carry_the_token_and_json(peer: str) -> None:
    _Handler.answers = {
        "/api/v1/settings": (200, b'{"values": {}, "changed": [], "restart_required": []}'),
        "/api/v1/tenants": (200, b"[]"),
    }
    c = client(peer)
    assert c.put_settings({"uplink_port": 7702})["changed"] == []
    assert c.tenant("a b") is None
    assert _Handler.seen[0] == {
        "method": "PUT",
        "path": "/api/v1/settings",
        "auth": "Bearer s3cret-token",
        "body": {"uplink_port": 7702},
    }
    assert _Handler.seen[1]["path"] == "/api/v1/tenants?name=a%20b"


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationFailed), (404, NotFound), (409, Conflict), (422, Refused), (500, Refused)]
)
def test_http_errors_are_typed_and_carry_the_detail(peer: str, status: int, error: type[DirectorApiError]) -> None:
    _Handler.answers = {"/api/v1/status": (status, json.dumps({"detail": "why it was refused"}).encode())}
    with pytest.raises(error) as info:
        client(peer).status()
    assert info.value.status == status
    assert ("admin token" if status == 401 else "why it was refused") in str(info.value)
    assert "s3cret-token" not in str(info.value)


def test_not_json_and_unreachable(peer: str) -> None:
    _Handler.answers = {"/api/v1/health": (200, b"<html>not the Director</html>")}
    with pytest.raises(DirectorApiError, match=r"not JSON; is .* a Director"):
        client(peer).health()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(ConnectionFailed, match="cannot reach the Director"):
        client(f"https://127.0.0.1:{closed}").health()


def test_bad_url_and_token_never_in_repr() -> None:
    with pytest.raises(DirectorApiError, match="must start with https://"):
        client("director:4443")
    assert "s3cret-token" not in repr(ConnectionParams(url="https://d:4443", token="s3cret-token"))


def test_write_only_settings_are_sent_when_unset_or_cleared_and_never_shown() -> None:
    from ansible_collections.tenantry.msp.plugins.module_utils.clients.director_api import masked, settings_changes

    registry = {"smtp_password": {"type": "string", "secret": True}, "smtp_host": {"type": "string"}}
    assert settings_changes({"smtp_password": ""}, registry, {"smtp_password": "pw"}) == {"smtp_password": "pw"}
    assert settings_changes({"smtp_password": "********"}, registry, {"smtp_password": "other"}) == {}
    assert settings_changes({"smtp_password": "********"}, registry, {"smtp_password": ""}) == {"smtp_password": ""}
    assert masked({"smtp_password": "pw", "smtp_host": "mx"}, registry) == {
        "smtp_password": "********",
        "smtp_host": "mx",
    }
