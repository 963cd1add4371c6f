"""Users, logins and server-side sessions (tables ``users`` and ``sessions``, migration 0002).

Logins cannot be raced or used to find accounts:

* every attempt is counted *before* the password is checked, per source address (in memory) and
  per account (one atomic ``UPDATE`` that claims an attempt only while the account is below
  ``login_lockout_failures``), so parallel attempts are capped exactly; a success takes its count
  back out;
* an account that reached the limit is locked for ``login_lockout_seconds``; a right password is
  refused while it is locked;
* unknown, disabled, locked and wrong all get the same answer after the same Argon2id work.

A session is a random 256-bit cookie value; only its SHA-256 is stored, with its CSRF token, its
idle deadline (``session_idle_timeout`` after the last request) and its absolute one
(``session_absolute_timeout`` after login).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tenantry.director.accounts.access import ROLES, Principal
from tenantry.director.errors import DirectorError
from tenantry.director.limits import AttemptLimiter, Slots
from tenantry.director.settings import ExpertSettings
from tenantry.director.store import Database

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_TOUCH_EVERY = 5.0  # seconds: a busy session is written at most this often


class Hasher(Protocol):
    def hash(self, secret: str) -> str: ...

    def verify(self, secret: str, phc: str) -> bool: ...


class LoginRefused(DirectorError):
    """One answer for every refused login (nothing tells an account exists or is locked)."""

    def __init__(self) -> None:
        super().__init__(401, "wrong user name or password (or too many attempts: wait a few minutes)")


@dataclass
class UserRow:
    id: int
    username: str
    role: str
    tenant_id: str | None
    password_hash: str
    full_name: str
    email: str
    disabled: bool
    source: str
    failed_logins: int
    locked_until: float | None
    last_login: float | None
    password_changed_at: float
    created_at: float
    updated_at: float

    def public(self, tenant_name: str | None) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role,
            "tenant": tenant_name,
            "full_name": self.full_name,
            "email": self.email,
            "disabled": self.disabled,
            "source": self.source,
            "locked": bool(self.locked_until and self.locked_until > time.time()),
            "last_login": self.last_login,
            "password_changed_at": self.password_changed_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class SessionInfo:
    token: str  # the cookie value (only returned at login)
    principal: Principal
    expires_at: float


_USER_COLUMNS = (
    "id, username, role, tenant_id, password_hash, full_name, email, disabled, source, failed_logins, "
    "locked_until, last_login, password_changed_at, created_at, updated_at"
)


def _user(row: tuple[Any, ...]) -> UserRow:
    values = list(row)
    values[7] = bool(values[7])
    return UserRow(*values)


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise DirectorError(422, f"invalid request: password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise DirectorError(422, f"invalid request: password: at most {MAX_PASSWORD} characters")


class Accounts:
    """Users and sessions over the Director's database."""

    def __init__(
        self,
        db: Database,
        *,
        settings: Callable[[], ExpertSettings],
        hasher: Hasher,
        tenant_name: Callable[[str], str | None],
        events: Callable[..., None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self._settings = settings
        self._hasher = hasher
        self._tenant_name = tenant_name
        self._event = events
        self._clock = clock
        self.source_limiter = AttemptLimiter()
        self._slots = Slots(lambda: 2, queue=64, what="logins")
        self._dummy = hasher.hash(secrets.token_urlsafe(16))

    # ------------------------------------------------------------------ users
    def user(self, username: str) -> UserRow | None:
        row = self.db.row(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", (username.lower(),))
        return _user(row) if row else None

    def user_by_id(self, user_id: int) -> UserRow | None:
        row = self.db.row(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    def users(self, tenant_id: str | None = None) -> list[UserRow]:
        if tenant_id is None:
            rows = self.db.rows(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")
        else:
            rows = self.db.rows(
                f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = ? ORDER BY username", (tenant_id,)
            )
        return [_user(r) for r in rows]

    def user_or_404(self, username: str) -> UserRow:
        row = self.user(username)
        if row is None:
            raise DirectorError(404, f"no user named {username!r}")
        return row

    def _check_role(self, role: str, tenant_id: str | None) -> None:
        if role not in ROLES:
            raise DirectorError(422, f"invalid request: role: one of {', '.join(ROLES)}")
        if role == "tenant" and tenant_id is None:
            raise DirectorError(422, "invalid request: tenant: a tenant user belongs to exactly one tenant")
        if role != "tenant" and tenant_id is not None:
            raise DirectorError(422, "invalid request: tenant: only role 'tenant' belongs to a tenant")

    async def _hash(self, password: str) -> str:
        async with self._slots.hold():
            return await asyncio.to_thread(self._hasher.hash, password)

    async def create_user(
        self,
        *,
        username: str,
        role: str,
        password: str,
        tenant_id: str | None = None,
        full_name: str = "",
        email: str = "",
        disabled: bool = False,
        source: str = "api",
        actor: str = "",
    ) -> UserRow:
        username = username.lower()
        if not USERNAME.match(username):
            raise DirectorError(422, "invalid request: username: lower-case letters, digits and . _ @ - (1-64)")
        self._check_role(role, tenant_id)
        check_password(password)
        if self.user(username) is not None:
            raise DirectorError(409, f"a user named {username!r} exists already (PATCH it to change it)")
        phc = await self._hash(password)
        now = self._clock()
        self.db.insert(
            "INSERT INTO users (username, role, tenant_id, password_hash, full_name, email, disabled, source, "
            "password_changed_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (username, role, tenant_id, phc, full_name, email, int(disabled), source, now, now, now),
        )
        self._event("user_created", f"user {username} ({role}) created by {actor or '?'}", tenant_id, user=username)
        row = self.user(username)
        assert row is not None
        return row

    async def update_user(self, username: str, changes: dict[str, Any], actor: str = "") -> UserRow:
        row = self.user_or_404(username)
        fields: dict[str, Any] = {}
        role = changes.get("role", row.role)
        tenant_id = changes.get("tenant_id", row.tenant_id)
        if "role" in changes or "tenant_id" in changes:
            self._check_role(role, tenant_id)
            if role != row.role:
                fields["role"] = role
            if tenant_id != row.tenant_id:
                fields["tenant_id"] = tenant_id
        for key in ("full_name", "email"):
            if key in changes and changes[key] != getattr(row, key):
                fields[key] = changes[key]
        if "disabled" in changes and bool(changes["disabled"]) != row.disabled:
            fields["disabled"] = int(bool(changes["disabled"]))
        if changes.get("password") is not None:
            check_password(changes["password"])
            fields["password_hash"] = await self._hash(changes["password"])
            fields["password_changed_at"] = self._clock()
            fields["failed_logins"] = 0
            fields["locked_until"] = None
        if changes.get("unlock"):
            fields["failed_logins"] = 0
            fields["locked_until"] = None
        if not fields:
            return row
        fields["updated_at"] = self._clock()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.db.tx():
            self.db.execute(f"UPDATE users SET {cols} WHERE id = ?", (*fields.values(), row.id))
            # A new password, role or tenant, or a disabled account: every open session ends.
            if {"password_hash", "role", "tenant_id", "disabled"} & set(fields):
                self.db.execute("DELETE FROM sessions WHERE user_id = ?", (row.id,))
        shown = sorted(k for k in fields if k not in ("updated_at", "password_hash", "failed_logins", "locked_until"))
        shown = ["password" if k == "password_changed_at" else k for k in shown]
        self._event("user_updated", f"user {username} updated by {actor or '?'}: {', '.join(shown)}", row.tenant_id)
        new = self.user_by_id(row.id)
        assert new is not None
        return new

    def delete_user(self, username: str, actor: str = "") -> UserRow:
        row = self.user_or_404(username)
        with self.db.tx():
            self.db.execute("DELETE FROM sessions WHERE user_id = ?", (row.id,))
            self.db.execute("DELETE FROM users WHERE id = ?", (row.id,))
        self._event("user_deleted", f"user {username} removed by {actor or '?'}", row.tenant_id)
        return row

    def tenant_removed(self, tenant_id: str) -> None:
        """A removed tenant's users cannot log in again (their sessions end)."""
        with self.db.tx():
            self.db.execute(
                "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?)", (tenant_id,)
            )
            self.db.execute("UPDATE users SET disabled = 1 WHERE tenant_id = ?", (tenant_id,))

    # ------------------------------------------------------------------ logins
    def _claim(self, row: UserRow, limit: int) -> bool:
        """Atomically count an attempt on the account; False when it is locked or at its limit."""
        now = self._clock()
        changed = self.db.execute(
            "UPDATE users SET "
            "failed_logins = CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_logins + 1 END, "
            "locked_until = NULL "
            "WHERE id = ? AND ((locked_until IS NULL AND failed_logins < ?) OR locked_until <= ?)",
            (row.id, limit, now),
        )
        return changed == 1

    async def login(self, username: str, password: str, source: str) -> SessionInfo:
        settings = self._settings()
        wait = self.source_limiter.begin(source, settings.login_failures_per_minute)
        if wait:
            self._event("login_refused", f"too many logins from {source}", None, address=source)
            raise DirectorError(429, f"too many login attempts from {source}; retry in {wait:.0f} s")
        name = username.strip().lower()[:64]
        row = self.user(name) if USERNAME.match(name) else None
        claimed = row is not None and self._claim(row, settings.login_lockout_failures)
        usable = row is not None and claimed and not row.disabled and self._tenant_ok(row)
        phc = row.password_hash if usable and row is not None else self._dummy
        async with self._slots.hold():
            good = await asyncio.to_thread(self._hasher.verify, password[:MAX_PASSWORD], phc)
        if row is None or not usable or not good:
            if row is not None and claimed:
                self.db.execute(
                    "UPDATE users SET locked_until = ? WHERE id = ? AND failed_logins >= ? AND locked_until IS NULL",
                    (self._clock() + settings.login_lockout_seconds, row.id, settings.login_lockout_failures),
                )
            why = "unknown user" if row is None else ("locked or disabled" if not usable else "wrong password")
            tenant = row.tenant_id if row else None
            self._event("login_failed", f"login as {name!r} from {source} refused: {why}", tenant, address=source)
            raise LoginRefused()
        now = self._clock()
        self.db.execute(
            "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login = ? WHERE id = ?", (now, row.id)
        )
        self.source_limiter.succeeded(source)
        info = self._new_session(row, source)
        self._event("login", f"{row.username} ({row.role}) logged in from {source}", row.tenant_id, address=source)
        return info

    def _tenant_ok(self, row: UserRow) -> bool:
        return row.role != "tenant" or (row.tenant_id is not None and self._tenant_name(row.tenant_id) is not None)

    def _new_session(self, row: UserRow, source: str) -> SessionInfo:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + self._settings().session_absolute_timeout
        sid = session_id(token)
        self.db.execute(
            "INSERT INTO sessions (id, user_id, csrf, created_at, last_seen, expires_at, address) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sid, row.id, csrf, now, now, expires, source[:64]),
        )
        return SessionInfo(token=token, principal=self._principal(row, sid, csrf), expires_at=expires)

    def _principal(self, row: UserRow, sid: str, csrf: str) -> Principal:
        return Principal(
            kind="user",
            username=row.username,
            role=row.role,
            user_id=row.id,
            tenant_id=row.tenant_id,
            tenant_name=self._tenant_name(row.tenant_id) if row.tenant_id else None,
            session_id=sid,
            csrf=csrf,
        )

    # ------------------------------------------------------------------ sessions
    def resolve(self, token: str | None) -> Principal | None:
        """The principal of a session cookie, or None (unknown, idle too long, past its end, user gone)."""
        if not token or len(token) > 128:
            return None
        sid = session_id(token)
        found = self.db.row("SELECT user_id, csrf, last_seen, expires_at FROM sessions WHERE id = ?", (sid,))
        if found is None:
            return None
        user_id, csrf, last_seen, expires_at = found
        now = self._clock()
        if now - last_seen > self._settings().session_idle_timeout or now >= expires_at:
            self.db.execute("DELETE FROM sessions WHERE id = ?", (sid,))
            return None
        row = self.user_by_id(int(user_id))
        if row is None or row.disabled or not self._tenant_ok(row):
            self.db.execute("DELETE FROM sessions WHERE id = ?", (sid,))
            return None
        if now - last_seen >= _TOUCH_EVERY:
            self.db.execute("UPDATE sessions SET last_seen = ? WHERE id = ?", (now, sid))
        return self._principal(row, sid, csrf)

    def logout(self, principal: Principal) -> None:
        if principal.session_id:
            self.db.execute("DELETE FROM sessions WHERE id = ?", (principal.session_id,))
            self._event("logout", f"{principal.username} logged out", principal.tenant_id)

    def expire_sessions(self) -> int:
        now = self._clock()
        return self.db.execute(
            "DELETE FROM sessions WHERE expires_at <= ? OR last_seen < ?",
            (now, now - self._settings().session_idle_timeout),
        )

    def session_count(self) -> int:
        row = self.db.row("SELECT COUNT(*) FROM sessions")
        return int(row[0]) if row else 0

    def sessions_of(self, user_id: int) -> int:
        row = self.db.row("SELECT COUNT(*) FROM sessions WHERE user_id = ?", (user_id,))
        return int(row[0]) if row else 0

    @staticmethod
    def csrf_ok(principal: Principal, sent: str | None) -> bool:
        return bool(principal.csrf and sent and hmac.compare_digest(principal.csrf.encode(), sent.encode()))
