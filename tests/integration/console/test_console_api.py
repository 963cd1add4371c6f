"""The console's REST side against a real Director process on loopback (real TLS, SQLite, Argon2id):
users, logins and sessions, who may call what, CSRF, write-only secrets, alarms delivered by a signed
webhook and by e-mail to a real SMTP listener, drift audits, /metrics."""

from __future__ import annotations

import http.cookiejar
import http.server
import json
import re
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from consolesite import PASSWORD, Mailbox
from services_harness import ApiError, DirectorProc, free_port, wait_for

from tenantry.director.alarms.delivery import signature

pytestmark = pytest.mark.integration


class Browser:
    """A cookie-keeping HTTPS client standing in for a browser (the real one is in test_console_browser)."""

    def __init__(self, director: DirectorProc) -> None:
        self.d = director
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=director.ctx), urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect
        )
        self.csrf = ""

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, Any] | None = None,
        body: Any = None,
        csrf: bool = True,
        **headers: str,
    ) -> tuple[int, str, dict[str, str]]:
        data = None
        hdrs = dict(headers)
        if form is not None:
            data = urllib.parse.urlencode(form, doseq=True).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
            if csrf and self.csrf:
                hdrs["X-CSRF-Token"] = self.csrf
        req = urllib.request.Request(self.d.url + path, data=data, method=method, headers=hdrs)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, resp.read().decode(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), dict(exc.headers)

    def login(self, user: str, password: str = PASSWORD, next_: str = "") -> tuple[int, str, dict[str, str]]:
        _s, html, _h = self.request("GET", "/login")
        token = re.search(r'name="login_token" value="([^"]+)"', html)
        assert token is not None
        result = self.request(
            "POST",
            "/login",
            form={"username": user, "password": password, "login_token": token.group(1), "next": next_},
        )
        if result[0] == 303:
            _s, page, _h = self.request("GET", result[2]["location"])
            found = re.search(r'name="csrf_token" value="([^"]+)"', page)
            self.csrf = found.group(1) if found else ""
        return result


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from aiosmtpd.controller import Controller

    root = tmp_path_factory.mktemp("console-api")
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    director = DirectorProc(root, {"alarm_check_interval": 0.5, "login_failures_per_minute": 1000}).start()
    try:
        director.create_tenant("acme", workload_quota=3)
        director.create_tenant("globex")
        for user, role, tenant in (
            ("ada", "admin", None),
            ("oli", "operator", None),
            ("rita", "readonly", None),
            ("tom", "tenant", "acme"),
            ("gus", "tenant", "globex"),
        ):
            director.api(
                "POST", "/api/v1/users", {"username": user, "role": role, "tenant": tenant, "password": PASSWORD}
            )
        yield {"director": director, "hook": hook, "mailbox": mailbox, "smtp_port": smtp_port, "root": root}
    finally:
        director.stop()
        smtp.stop()
        hook.shutdown()


def test_users_api_never_returns_a_password(env: dict[str, Any]) -> None:
    d: DirectorProc = env["director"]
    users = {u["username"]: u for u in d.api("GET", "/api/v1/users")}
    assert users["tom"]["tenant"] == "acme" and users["tom"]["role"] == "tenant"
    assert all("password" not in json.dumps(u).replace("password_changed_at", "") for u in users.values())
    with pytest.raises(ApiError) as short:
        d.api("POST", "/api/v1/users", {"username": "x", "role": "admin", "password": "short"})
    assert short.value.status == 422
    with pytest.raises(ApiError) as no_tenant:
        d.api("POST", "/api/v1/users", {"username": "x", "role": "tenant", "password": PASSWORD})
    assert no_tenant.value.status == 422
    with pytest.raises(ApiError) as unknown_tenant:
        d.api("POST", "/api/v1/users", {"username": "x", "role": "tenant", "tenant": "nope", "password": PASSWORD})
    assert unknown_tenant.value.status == 404
    d.api("POST", "/api/v1/users", {"username": "tmp", "role": "readonly", "password": PASSWORD})
    assert d.api("PATCH", "/api/v1/users/tmp", {"full_name": "T. Emp", "disabled": True})["disabled"] is True
    d.api("DELETE", "/api/v1/users/tmp")
    assert d.api("GET", "/api/v1/users?name=tmp") == []
    assert PASSWORD not in d.log()


def test_login_sets_a_strict_session_cookie_and_logout_ends_it(env: dict[str, Any]) -> None:
    b = Browser(env["director"])
    status, _body, headers = b.login("oli")
    assert status == 303 and headers["location"] == "/console"
    cookie = headers["set-cookie"] if "set-cookie" in headers else headers["Set-Cookie"]
    assert "__Host-tenantry-session=" in cookie
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower(), cookie
    assert b.request("GET", "/api/v1/me")[1] == json.dumps(
        {"username": "oli", "role": "operator", "tenant": None}, separators=(",", ":")
    )
    assert b.request("POST", "/logout", form={"csrf_token": b.csrf})[0] == 303
    assert b.request("GET", "/api/v1/me")[0] == 401
    # The same answer for an unknown user and a wrong password; no open redirect.
    wrong = Browser(env["director"]).login("oli", "not the password")
    unknown = Browser(env["director"]).login("nobody", "not the password")
    assert wrong[0] == unknown[0] == 401
    assert re.search(r'role="alert">(.*?)<', wrong[1]).group(1) == re.search(r'role="alert">(.*?)<', unknown[1]).group(
        1
    )
    assert Browser(env["director"]).login("oli", next_="//evil.example/x")[2]["location"] == "/console"
    assert Browser(env["director"]).login("tom", next_="/console/settings")[2]["location"] == "/portal"
    # A login form posted from elsewhere (no login cookie) is refused.
    forged = Browser(env["director"]).request(
        "POST", "/login", form={"username": "oli", "password": PASSWORD, "login_token": "x"}
    )
    assert forged[0] == 403


MATRIX = [
    # method, path, body, expected status per role: admin, operator, readonly, tenant
    ("GET", "/api/v1/tenants", None, (200, 200, 200, 403)),
    ("GET", "/api/v1/fleet", None, (200, 200, 200, 403)),
    ("GET", "/metrics", None, (200, 200, 200, 403)),
    ("GET", "/api/v1/users", None, (200, 403, 403, 403)),
    ("GET", "/api/v1/settings", None, (200, 200, 200, 403)),
    ("PUT", "/api/v1/settings", {"alarm_certificate_days": 15}, (200, 403, 403, 403)),
    ("POST", "/api/v1/tenants/acme/renew", None, (409, 409, 403, 403)),  # allowed, but acme is offline
    ("POST", "/api/v1/tenants", {"name": "newco", "kind": "local"}, (201, 403, 403, 403)),
    ("GET", "/api/v1/portal", None, (403, 403, 403, 200)),
    ("GET", "/api/v1/alarms", None, (200, 200, 200, 403)),
    ("POST", "/api/v1/audit", {"findings": []}, (201, 201, 403, 403)),
    ("GET", "/console/settings", None, (200, 200, 200, 403)),
    ("GET", "/console/users", None, (200, 403, 403, 403)),
    ("GET", "/portal", None, (403, 403, 403, 200)),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _b, _e in MATRIX])
def test_each_role_reaches_what_it_may(
    env: dict[str, Any], method: str, path: str, body: Any, expected: tuple[int, ...]
) -> None:
    for user, want in zip(("ada", "oli", "rita", "tom"), expected, strict=True):
        b = Browser(env["director"])
        assert b.login(user)[0] == 303
        status, text, _h = b.request(method, path, body=body if body is not None else ({} if method != "GET" else None))
        assert status == want, f"{user} {method} {path}: {status} {text[:200]}"
    nobody = Browser(env["director"]).request(method, path, body=body)
    assert nobody[0] in (401, 303), nobody  # pages send nobody to the login page
    if env["director"].api("GET", "/api/v1/tenants?name=newco"):
        env["director"].api("DELETE", "/api/v1/tenants/newco")


def test_csrf_token_and_same_origin_are_required_for_changes(env: dict[str, Any]) -> None:
    b = Browser(env["director"])
    b.login("ada")
    change = {"alarm_certificate_days": 20}
    assert b.request("PUT", "/api/v1/settings", body=change, csrf=False)[0] == 403
    assert b.request("PUT", "/api/v1/settings", body=change, **{"X-CSRF-Token": "wrong"}, csrf=False)[0] == 403
    cross = b.request("PUT", "/api/v1/settings", body=change, **{"Sec-Fetch-Site": "cross-site"})
    assert cross[0] == 403
    assert b.request("PUT", "/api/v1/settings", body=change)[0] == 200
    assert b.request("POST", "/console/alarms/1/ack", form={})[0] == 403
    # The admin token (no cookie) needs no CSRF token: a browser never sends it by itself.
    assert env["director"].api("PUT", "/api/v1/settings", {"alarm_certificate_days": 14})["changed"]


def test_secrets_are_write_only(env: dict[str, Any]) -> None:
    d: DirectorProc = env["director"]
    secret = "s3cret-webhook-key-123"
    d.api("PUT", "/api/v1/settings", {"webhook_secret": secret, "smtp_password": "smtp-pass-456"})
    values = d.api("GET", "/api/v1/settings")["values"]
    assert values["webhook_secret"] == values["smtp_password"] == "********"
    assert d.api("GET", "/api/v1/settings/webhook_secret")["value"] == "********"
    assert d.api("GET", "/api/v1/settings")["registry"]["webhook_secret"]["secret"] is True
    # Sent back as shown, it is kept.
    assert d.api("PUT", "/api/v1/settings", {"webhook_secret": "********"})["changed"] == []
    b = Browser(d)
    b.login("ada")
    page = b.request("GET", "/console/settings")[1]
    events = json.dumps(d.api("GET", "/api/v1/events?kind=setting_changed&limit=1000"))
    for text in (page, events, d.log()):
        assert secret not in text and "smtp-pass-456" not in text


def test_alarms_go_to_a_signed_webhook_and_an_smtp_listener_and_clear(env: dict[str, Any]) -> None:
    d: DirectorProc = env["director"]
    Hook.received.clear()
    secret = "s3cret-webhook-key-123"
    d.api(
        "PUT",
        "/api/v1/settings",
        {
            "webhook_url": f"http://127.0.0.1:{env['hook'].server_port}/alarms",
            "webhook_secret": secret,
            "smtp_host": "127.0.0.1",
            "smtp_port": env["smtp_port"],
            "smtp_security": "none",
            "smtp_to": ["noc@msp.example"],
        },
    )
    finding = {"check": "mac_shared", "key": "mac:00:50:56:00:00:aa", "tenant": "acme", "message": "MAC on two vNICs"}
    assert d.api("POST", "/api/v1/audit", {"source": "test", "findings": [finding]})["findings"] == 1
    wait_for(lambda: Hook.received, 20, "the webhook")
    headers, body = Hook.received[0]
    assert headers["X-Tenantry-Signature"] == signature(secret, headers["X-Tenantry-Timestamp"], body)
    payload = json.loads(body)
    assert payload["event"] == "alarm.raised" and payload["alarm"]["tenant"] == "acme"
    mailbox: Mailbox = env["mailbox"]
    wait_for(lambda: any("MAC on two vNICs" in s for s in mailbox.subjects()), 20, "the e-mail")
    alarm = next(a for a in d.api("GET", "/api/v1/alarms") if a["kind"] == "drift")
    d.api("POST", f"/api/v1/alarms/{alarm['id']}/ack")
    # The next audit no longer finds it: cleared (and said so).
    d.api("POST", "/api/v1/audit", {"source": "test", "findings": []})
    assert not [a for a in d.api("GET", "/api/v1/alarms") if a["kind"] == "drift"]
    wait_for(lambda: any(json.loads(b)["event"] == "alarm.cleared" for _h, b in Hook.received), 20, "the clear")
    history = [a for a in d.api("GET", "/api/v1/alarms?state=all") if a["id"] == alarm["id"]]
    assert history[0]["acked_by"] == "admin token" and history[0]["cleared_by"]
    d.api("PUT", "/api/v1/settings", {"webhook_url": "", "smtp_host": ""})


def test_metrics_are_prometheus_text(env: dict[str, Any]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    req = urllib.request.Request(
        env["director"].url + "/metrics", headers={"Authorization": f"Bearer {env['director'].token}"}
    )
    with urllib.request.urlopen(req, context=env["director"].ctx) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"tenantry_tenants", "tenantry_tenants_online", "tenantry_alarms_open", "tenantry_jobs"} <= set(families)
    states = {s.labels["state"]: s.value for s in families["tenantry_tenants"].samples}
    assert states.get("awaiting_enrollment", 0) >= 2
    assert families["tenantry_tenants_online"].samples[0].value == 0


def test_without_jobs_the_portal_says_so_and_starts_nothing(env: dict[str, Any]) -> None:
    b = Browser(env["director"])
    b.login("tom")
    status, html, _h = b.request("GET", "/portal")
    assert status == 200 and "Failover is not available" in html
    refused = b.request("POST", "/api/v1/portal/runs", body={"mode": "test", "vms": ["x"]})
    assert refused[0] in (409, 422)
    assert env["director"].api("GET", "/api/v1/tenants/acme/runs") == []


def test_security_headers(env: dict[str, Any]) -> None:
    status, _html, headers = Browser(env["director"]).request("GET", "/login")
    lower = {k.lower(): v for k, v in headers.items()}
    assert status == 200
    assert (
        "script-src 'self'" in lower["content-security-policy"]
        and "frame-ancestors 'none'" in lower["content-security-policy"]
    )
    assert lower["x-frame-options"] == "DENY" and lower["x-content-type-options"] == "nosniff"
    assert "no-store" in lower["cache-control"]
    static = Browser(env["director"]).request("GET", "/static/console.js")
    assert static[0] == 200 and "fetch(" in static[1]
    assert Browser(env["director"]).request("GET", "/static/../service.py")[0] == 404


def test_report_and_ssl_context_are_real(env: dict[str, Any]) -> None:
    ctx: ssl.SSLContext = env["director"].ctx
    assert ctx.verify_mode == ssl.CERT_REQUIRED  # every request above verified the Director's certificate
    assert Path(env["root"], "director", "director.db").stat().st_mode & 0o077 == 0
