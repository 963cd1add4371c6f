"""Issue 13, items 8 and 9: every route of the REST API against hostile input (no 5xx, ever), who
may set the client address, and the database files' modes.

The corpus is generated from the Director's own OpenAPI document: every path parameter, query
parameter and body field of every operation gets every hostile value below, so a new route is
fuzzed without anyone adding it here.
"""

from __future__ import annotations

import http.client
import json
import ssl
import stat
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from services_harness import ApiError, DirectorProc

pytestmark = pytest.mark.integration

HOSTILE: list[Any] = [
    None,
    True,
    -1,
    0,
    2**31,
    2**63,
    10**23,
    -(10**23),
    1.5e308,
    0.1,
    "",
    "x" * 70_000,
    "\x00",
    "a\nb",
    "../../etc/passwd",
    "é💥\u2028",
    [],
    [1] * 10_000,
    {},
    {"value": {"value": None}},
]
HOSTILE_TEXT = ["", "%00", "..", "x" * 8000, "%0A", "%F0%9F%92%A5", "-1", "99999999999999999999999", "a%2Fb"]
# Bodies JSON parsers choke on, written by hand.
RAW_BODIES = [
    b"",
    b"{",
    b"\xff\xfe",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'"' + b"\\u0000" * 10_000 + b'"',
    b"1e999999",
    b"NaN",
]


class Client:
    """One keep-alive HTTPS connection, re-opened when the server closes it."""

    def __init__(self, director: DirectorProc) -> None:
        self.director = director
        self.ctx = ssl.create_default_context(cafile=str(director.state / "ca.crt"))
        self.conn: http.client.HTTPSConnection | None = None

    def send(self, method: str, path: str, body: bytes | Iterator[bytes] | None, chunked: bool = False) -> int:
        """The answer's status; 0 when the server closed the connection instead (a request too large to
        read, say): not an error answer, and never a 5xx."""
        for _attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    "127.0.0.1", self.director.setup_port, context=self.ctx, timeout=30
                )
            headers = {"Authorization": f"Bearer {self.director.token}", "Content-Type": "application/json"}
            try:
                self.conn.request(method, path, body=body, headers=headers, encode_chunked=chunked)
                resp = self.conn.getresponse()
                resp.read()
                if resp.will_close:
                    self.conn.close()
                    self.conn = None
                return resp.status
            except (OSError, http.client.HTTPException):  # the server closed the kept-alive connection
                self.conn.close()
                self.conn = None
        return 0


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ops.append((method.upper(), path, op))
    assert len(ops) >= 20, "the OpenAPI document lists fewer routes than the API has"
    return ops


def _fill(path: str, op: dict[str, Any], value: str = "fuzz") -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", value)
    return path


def _body_fields(doc: dict[str, Any], op: dict[str, Any]) -> list[str]:
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return list(schema.get("properties", {}))


def test_no_route_answers_5xx_to_hostile_input(director: DirectorProc) -> None:
    client = Client(director)
    failures: list[str] = []

    def check(method: str, path: str, body: bytes | None, what: str) -> None:
        status = client.send(method, path, body)
        if status >= 500:
            failures.append(f"{status} {method} {path[:120]} ({what})")

    sent = 0
    doc = director.api("GET", "/openapi.json", auth=False)
    for method, template, op in _operations(doc):
        # Path parameters.
        for text in HOSTILE_TEXT:
            check(method, _fill(template, op, text), b"{}" if method in ("POST", "PUT", "PATCH") else None, "path")
            sent += 1
        path = _fill(template, op)
        # Query parameters.
        for param in op.get("parameters", []):
            if param["in"] != "query":
                continue
            for value in HOSTILE:
                query = urllib.parse.urlencode(
                    {param["name"]: json.dumps(value) if not isinstance(value, str) else value}
                )
                check(method, f"{path}?{query}", None, f"query {param['name']}")
                sent += 1
        if method not in ("POST", "PUT", "PATCH"):
            continue
        # Whole bodies, then every field of the body's schema.
        for raw in RAW_BODIES:
            check(method, path, raw, f"raw body {raw[:12]!r}")
            sent += 1
        for value in HOSTILE:
            check(method, path, json.dumps(value).encode(), f"body {str(value)[:20]}")
            sent += 1
            for field in _body_fields(doc, op):
                check(method, path, json.dumps({field: value}).encode(), f"field {field}")
                sent += 1
    assert not failures, "\n".join(failures[:20])
    assert sent > 900


def test_specific_malformed_requests_get_4xx_with_a_message(director: DirectorProc) -> None:
    client = Client(director)
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/api/v1/settings", "/api/v1/settings/log_level"):
        with pytest.raises(ApiError) as exc:
            director.api("PUT", path, raw=deep)
        assert exc.value.status == 400 and "JSON" in exc.value.detail
    # A chunked body over 1 MiB (no Content-Length to refuse it up front).
    chunks = iter([b'{"log_level": "' + b"x" * 65536] * 20 + [b'"}'])
    assert client.send("PUT", "/api/v1/settings", chunks, chunked=True) == 413
    with pytest.raises(ApiError) as exc:
        director.api("GET", "/api/v1/events?after=" + str(10**23))
    assert exc.value.status == 422 and "after" in exc.value.detail


def _enroll_failure_address(director: DirectorProc, forwarded: str) -> str:
    with pytest.raises(ApiError):
        director.api(
            "POST",
            "/api/v1/enroll",
            {"tenant_id": "nope", "token": "nope", "csr_pem": "x"},
            auth=False,
            headers={"X-Forwarded-For": forwarded},
        )
    address: str = director.api("GET", "/api/v1/events?kind=enroll_failed")[-1]["data"]["address"]
    return address


def test_forwarded_for_is_believed_only_from_configured_proxies(director: DirectorProc) -> None:
    # Default: nobody is a proxy; a local client cannot choose its rate-limit key or recorded address.
    assert _enroll_failure_address(director, "203.0.113.9") == "127.0.0.1"
    director.api("PUT", "/api/v1/settings", {"trusted_proxies": ["127.0.0.0/30"]})
    assert _enroll_failure_address(director, "203.0.113.9") == "203.0.113.9"
    # The right-most address that is not itself a trusted proxy is the client.
    assert _enroll_failure_address(director, "198.51.100.7, 203.0.113.9, 127.0.0.2") == "203.0.113.9"
    assert _enroll_failure_address(director, "not-an-address") == "127.0.0.1"
    with pytest.raises(ApiError) as exc:
        director.api("PUT", "/api/v1/settings", {"trusted_proxies": ["proxy.example"]})
    assert exc.value.status == 422 and "trusted_proxies" in exc.value.detail


def test_database_and_its_side_files_are_private(director: DirectorProc) -> None:
    director.create_tenant("writes-something")
    files = [director.state / name for name in ("director.db", "director.db-wal", "director.db-shm")]
    assert all(f.exists() for f in files)
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}
