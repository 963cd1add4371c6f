"""The Director: tenant registry, enrollment, Expert Settings, uplink sessions, tunnels, events."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import logging
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

import tenantry
from tenantry.common import logsetup, pki
from tenantry.director import firewall
from tenantry.director.accounts import Accounts
from tenantry.director.alarms import AlarmManager, Figures, Metrics, TenantView
from tenantry.director.authority import Authority, CredentialHasher, EnrollmentKey
from tenantry.director.backups.service import Backups
from tenantry.director.cluster import Cluster, Handlers, RemoteSession
from tenantry.director.config import DirectorConfig
from tenantry.director.errors import DirectorError, SessionElsewhere
from tenantry.director.jobs import JobManager, RunRow
from tenantry.director.limits import SharedAttemptLimiter, Slots
from tenantry.director.repository.manager import Repositories
from tenantry.director.settings import ExpertSettings, SettingsError, apply_changes, shown
from tenantry.director.store import IntegrityError, Store, TenantRow, stored_state
from tenantry.director.tunnels import TunnelManager
from tenantry.director.uplink import GOAWAY_REPLACED, GOAWAY_REVOKED, GOAWAY_SUPERSEDED, Session, UplinkHub
from tenantry.protocol import tls
from tenantry.protocol.channel import Channel, ChannelClosed, Response, StreamError
from tenantry.protocol.identity import new_tenant_id, serial_hex
from tenantry.protocol.messages import SiteInfo, bad_fields

log = logging.getLogger(__name__)


@dataclass
class Issued:
    tenant: TenantRow
    enrollment_key: str
    secret: str
    expires_at: float


@dataclass
class Enrolled:
    certificate_pem: str
    ca_pem: str
    uplink_port: int
    settings: dict[str, Any]


class Director:
    def __init__(self, config: DirectorConfig) -> None:
        self.config = config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        config.state_dir.chmod(0o700)
        self.store = Store(config.database)
        self.settings = self._load_settings()
        names = list(config.server_names)
        if config.clustered and config.advertised_peer_address not in names:
            names.append(config.advertised_peer_address)  # other Directors verify it on the peer port
        self.authority = Authority(config.state_dir, names)
        self.hasher = CredentialHasher(config.argon2_memory_kib, config.argon2_iterations)
        self.admin_token = self._admin_token()
        self.director_id = self._director_id()
        self.cluster: Cluster | None = None
        if config.clustered:
            self.cluster = self._join_cluster()
        # Unknown tenants cost the same Argon2id work as known ones: timing tells nothing.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        # Counted in the database: the limit holds across every Director sharing it.
        self.enroll_limiter = SharedAttemptLimiter(self.store.db)
        # Enrollment attempts (anyone on the network) and admin calls hash in separate slots.
        self._enroll_slots = Slots(lambda: self.settings.enroll_concurrency, queue=32, what="enrollment attempts")
        self._admin_slots = Slots(lambda: 2, queue=1000, what="credential operations")
        self.started_at = time.time()
        self.uplink_ctx = tls.server_context(
            self.authority.server_cert_path,
            self.authority.server_key_path,
            client_ca=self.authority.ca_cert_path,
            min_version=self.settings.tls_min_version,
        )
        self.api_ctx = tls.server_context(
            self.authority.server_cert_path,
            self.authority.server_key_path,
            client_ca=None,
            min_version=self.settings.tls_min_version,
        )
        self.hub = UplinkHub(
            store=self.store,
            settings=lambda: self.settings,
            ssl_context=self.uplink_ctx,
            authority=self.authority.ca,
            listen_host=config.listen_host,
            events=self.event,
            events_later=self.event_later,
        )
        self.hub.on_connect.append(self._session_started)
        self.hub.on_disconnect.append(self._session_ended)
        self.hub.on_ports_changed.append(self._publish_ports)
        self.setup_port = 0
        self.peer_port = 0  # bound by the peer server when several Directors share the database
        self._settings_lock = asyncio.Lock()
        self.tunnels = TunnelManager(
            store=self.store,
            hub=self.hub,
            authority=self.authority,
            settings=lambda: self.settings,
            events=self.event,
            bind=config.tunnel_bind,
            session_owner=self._session_owner,
            director_id=self.director_id if self.cluster is not None else None,
        )
        self.repositories = Repositories(
            self.store.db,
            root=config.repository_root or config.state_dir / "repositories",
            secondary_root=config.secondary_repository_root,
            keys_dir=config.state_dir / "repository-keys",
            cache_dir=config.state_dir / "restic-cache",
            binary=config.restic_binary,
        )
        self.backups = Backups(
            repositories=self.repositories,
            channel_of=self._channel_of,
            settings=lambda: self.settings,
            events=self.event,
            tenant_name=lambda tid: row.name if (row := self.store.tenant(tid)) else tid,
            staging=config.state_dir / "restore-staging",
        )
        # Console and portal: accounts, jobs, alarms (each room gets what it needs, not the Director).
        self.accounts = Accounts(
            self.store.db,
            settings=lambda: self.settings,
            hasher=self.hasher,
            tenant_name=self._tenant_name,
            events=self.event,
        )
        self.jobs = JobManager(
            self.store.db,
            config=config.jobs,
            jobs_dir=config.jobs_dir,
            settings=lambda: self.settings,
            events=self.event,
            owner=self.director_id if self.cluster is not None else None,
            alive=self._directors_alive,
        )
        self.alarms = AlarmManager(
            self.store.db,
            settings=lambda: self.settings,
            tenants=self.tenant_views,
            workloads=lambda: {t: f["workloads"] for t, f in self.jobs.records.all_facts().items()},
            stuck_runs=self.jobs.stuck,
            events=self.event,
            console_url=self.public_url,
        )
        self.jobs.on_finished += [self.alarms.run_finished, self._audit_finished]
        self.backups.on_alarm.append(self.alarms.backup_alarm)
        self.backups.on_recovered.append(self.alarms.backup_recovered)
        self.metrics = Metrics(self._figures)

    @functools.cached_property
    def peer_server_ctx(self) -> ssl.SSLContext:
        """The peer port (several Directors): clients must present a certificate of our CA."""
        auth = self.authority
        return tls.server_context(
            auth.server_cert_path, auth.server_key_path, client_ca=auth.ca_cert_path, min_version="1.2"
        )

    @functools.cached_property
    def peer_client_ctx(self) -> ssl.SSLContext:
        """Calling another Director's peer port: our Director client certificate, its name verified."""
        auth = self.authority
        return tls.client_context(ca=auth.ca_cert_path, cert=auth.client_cert_path, key=auth.client_key_path)

    # ------------------------------------------------------------------ start-up pieces
    def _load_settings(self) -> ExpertSettings:
        stored = self.store.settings()
        if not stored:
            seeds: dict[str, Any] = dict(self.config.seed_settings)
            if self.config.setup_port is not None:
                seeds["setup_port"] = self.config.setup_port
            if self.config.uplink_port is not None:
                seeds["uplink_port"] = self.config.uplink_port
            try:
                settings = apply_changes(ExpertSettings(), seeds) if seeds else ExpertSettings()
            except SettingsError as exc:
                raise SettingsError(f"seed settings: {exc}") from None
            self.store.save_settings(settings.model_dump())
            return settings
        known = {k: v for k, v in stored.items() if k in ExpertSettings.model_fields}
        return ExpertSettings.model_validate(ExpertSettings().model_dump() | known)

    def _director_id(self) -> str:
        """This Director's id, kept in its state directory (the same across restarts)."""
        path = self.config.state_dir / "director.id"
        if path.exists():
            return path.read_text().strip()
        value = secrets.token_hex(8)
        pki.write_private(path, (value + "\n").encode())
        return value

    def _join_cluster(self) -> Cluster:
        """Several Directors: they must share the CA and the admin token, or they would split the fleet."""
        from tenantry.director.store.postgres import PostgresBackend

        backend = self.store.db.backend
        assert isinstance(backend, PostgresBackend)
        config = self.config
        peer = f"https://{_url_host(config.advertised_peer_address)}:{config.peer_port}"
        cluster = Cluster(
            self.store,
            director_id=self.director_id,
            name=config.node_name or config.advertised_peer_address,
            peer_url=peer,
            version=tenantry.__version__,
            conninfo=backend.conninfo,
            handlers=Handlers(
                settings_changed=self._settings_changed_elsewhere,
                tenant_closed=self._tenant_closed_elsewhere,
                sessions_claimed=self._claimed_elsewhere,
                resync=self._resync,
                local_sessions=lambda: len(self.hub.sessions),
            ),
        )
        facts = {
            "ca_sha256": (self.authority.ca_sha256, "CA (ca.crt/ca.key)"),
            "admin_token_sha256": (hashlib.sha256(self.admin_token.encode()).hexdigest(), "admin token"),
        }
        for key, (mine, what) in facts.items():
            if cluster.registry.agree(key, mine) != mine:
                where = self.store.db.describe()
                raise ValueError(
                    f"this Director's {what} is not the one of the Directors already sharing {where}: "
                    "give every Director the same one (the director role does)"
                )
        return cluster

    def _admin_token(self) -> str:
        return ensure_admin_token(self.config.admin_token_path)

    def event(self, kind: str, message: str, tenant_id: str | None = None, **data: Any) -> None:
        self.store.add_event(kind, message, tenant_id, **data)
        log.info("event %s%s: %s", kind, f" tenant={tenant_id}" if tenant_id else "", message)

    def event_later(self, kind: str, message: str, tenant_id: str | None = None, **data: Any) -> None:
        """An event written with the next flush of deferred writes (high-volume session events)."""
        self.store.add_event_later(kind, message, tenant_id, **data)
        log.info("event %s%s: %s", kind, f" tenant={tenant_id}" if tenant_id else "", message)

    async def _flush_forever(self, interval: float = 0.2) -> None:
        """Write deferred status updates and session events every ``interval`` seconds, in one transaction."""
        while True:
            await asyncio.sleep(interval)
            self.flush()

    def flush(self) -> None:
        try:
            self.store.flush()
            if self.cluster is not None:
                self.cluster.after_flush()
        except Exception:  # the database may be away for a moment; status is written again later
            log.exception("writing deferred session status and events failed")

    def healthy(self) -> bool:
        """Able to serve: always for one Director; with several, its heartbeat reaches the database."""
        return self.cluster is None or self.cluster.healthy

    # ------------------------------------------------------------------ console and portal
    def _tenant_name(self, tenant_id: str) -> str | None:
        row = self.store.tenant(tenant_id)
        return row.name if row is not None else None

    def tenant_views(self) -> list[TenantView]:
        """Every tenant's state for the alarm rules and /metrics: a few columns each, and the sessions."""
        views = []
        elsewhere = self.cluster.sessions_elsewhere() if self.cluster is not None else None
        for row in self.store.tenant_briefs():
            live = self._live_session(row.id, row.revoked_at, elsewhere)
            state = "online" if live is not None else stored_state(row.kind, row.revoked_at, row.enrolled_at)
            # Offline counts from the later of the last state change and the enrollment (a Transporter
            # enrolled a second ago is not late for its first connection).
            changed = live.connected_at if live is not None else row.state_since
            since = max(filter(None, (changed, row.enrolled_at)), default=None)
            views.append(TenantView(row.id, row.name, row.kind, state, since, row.workload_quota))
        return views

    def _figures(self) -> Figures:
        states: dict[str, int] = {}
        for view in self.tenant_views():
            states[view.state] = states.get(view.state, 0) + 1
        return Figures(
            version=tenantry.__version__,
            tenants_by_state=states,
            tenants_online=len(self.hub.sessions),
            handshakes=self.hub.handshakes,
            throttled=self.hub.throttled,
            alarms_open=self.alarms.records.counts(),
            jobs_by_state=self.jobs.counts(),
            sessions=self.accounts.session_count(),
        )

    def ingest_audit(self, findings: list[dict[str, Any]], source: str, run_id: str | None, summary: str) -> int:
        """A drift audit's findings: kept, and turned into alarms (raised, or cleared when gone)."""
        report_id = self.alarms.records.add_audit(source, run_id, summary, findings)
        self.alarms.audit(findings, {r.name: r.id for r in self.store.tenant_briefs()})
        self.event("audit_received", f"drift audit from {source}: {len(findings)} finding(s)", report=report_id)
        return report_id

    def _audit_finished(self, run: RunRow) -> None:
        audit = run.result.get("audit")
        if run.kind == "audit" and run.state == "successful" and isinstance(audit, dict):
            findings = [f for f in audit.get("findings") or [] if isinstance(f, dict)]
            self.ingest_audit(findings, "job", run.id, "\n".join(map(str, audit.get("summary") or [])))

    def _directors_alive(self) -> set[str]:
        """Ids of the Directors whose heartbeat is current, read from the database (several Directors)."""
        if self.cluster is None:
            return {self.director_id}
        registry = self.cluster.registry
        return {p.id for p in registry.directors() if registry.alive(p)}

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(60)
            try:
                self.accounts.expire_sessions()
                if self.cluster is not None:  # runs of a Director that died: its tenants are free again
                    interrupted = self.jobs.recover(starting=False)
                    if interrupted:
                        log.warning("%d run(s) of a Director that is gone marked interrupted", interrupted)
            except Exception:  # the database may be away for a moment; next time
                log.exception("housekeeping failed")

    # ------------------------------------------------------------------ tenants
    def tenant_or_404(self, name: str) -> TenantRow:
        row = self.store.tenant_by_name(name)
        if row is None:
            raise DirectorError(404, f"no tenant named {name!r}")
        return row

    async def create_tenant(
        self,
        *,
        name: str,
        kind: str,
        description: str,
        contact: str,
        workload_quota: int,
        direct_connect: dict[str, Any] | None,
    ) -> Issued | TenantRow:
        if self.store.tenant_by_name(name) is not None:
            raise DirectorError(409, f"a tenant named {name!r} exists already (GET it, or PATCH to change it)")
        now = time.time()
        row = TenantRow(
            id=new_tenant_id(),
            name=name,
            kind=kind,
            description=description,
            contact=contact,
            workload_quota=workload_quota,
            created_at=now,
            updated_at=now,
            enroll_hash=None,
            enroll_expires_at=None,
            enrolled_at=None,
            revoked_at=None,
            last_seen=None,
            last_address=None,
            version=None,
            hostname=None,
            state_since=now,
            direct_connect=direct_connect,
        )
        taken = DirectorError(409, f"a tenant named {name!r} exists already (GET it, or PATCH to change it)")
        if kind != "remote":
            try:
                self.store.add_tenant(row)
            except IntegrityError:  # created on another Director meanwhile
                raise taken from None
            self.event("tenant_created", f"local tenant {name} created", row.id)
            return row
        issued = await self._new_credentials(row)
        try:
            self.store.add_tenant(issued.tenant)
        except IntegrityError:
            raise taken from None
        self.event("tenant_created", f"remote tenant {name} created; enrollment credentials issued", row.id)
        return issued

    async def _new_credentials(self, row: TenantRow) -> Issued:
        secret = self.hasher.new_secret()
        async with self._admin_slots.hold():
            row.enroll_hash = await asyncio.to_thread(self.hasher.hash, secret)
        row.enroll_expires_at = time.time() + self.settings.enrollment_ttl_hours * 3600
        key = EnrollmentKey(row.id, secret, self.authority.ca_sha256, self.public_url())
        return Issued(tenant=row, enrollment_key=key.encode(), secret=secret, expires_at=row.enroll_expires_at)

    async def reissue_credentials(self, name: str) -> Issued:
        row = self.tenant_or_404(name)
        if row.kind != "remote":
            raise DirectorError(409, f"tenant {name!r} is local; only remote tenants enroll a Transporter")
        if row.revoked_at is not None:
            raise DirectorError(409, f"tenant {name!r} is revoked")
        issued = await self._new_credentials(row)
        self.store.update_tenant(row.id, enroll_hash=row.enroll_hash, enroll_expires_at=row.enroll_expires_at)
        self.event("credentials_issued", "new one-time enrollment credentials issued", row.id)
        return issued

    def public_url(self) -> str:
        if self.config.public_url:
            return self.config.public_url
        host = self.config.server_names[0] if self.config.server_names else socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.setup_port or self.settings.setup_port}"

    def update_tenant(self, name: str, changes: dict[str, Any]) -> TenantRow:
        row = self.tenant_or_404(name)
        if "name" in changes and changes["name"] != row.name and self.store.tenant_by_name(changes["name"]):
            raise DirectorError(409, f"a tenant named {changes['name']!r} exists already")
        if changes:
            self.store.update_tenant(row.id, **changes)
            self.event("tenant_updated", f"tenant {name} updated: {', '.join(sorted(changes))}", row.id)
        return self.store.tenant(row.id) or row

    def revoke(self, name: str, *, remove: bool) -> TenantRow:
        row = self.tenant_or_404(name)
        with self.store.tx():
            count = self.store.revoke_certificates(row.id)
            if remove:
                self.store.delete_tenant(row.id)
            else:
                self.store.update_tenant(row.id, revoked_at=time.time(), enroll_hash=None, enroll_expires_at=None)
            if self.cluster is not None:  # delivered when this commits: the session closes wherever it is
                self.cluster.announce("revoked", tenant=row.id)
        self.hub.close_tenant(row.id, "tenant revoked", GOAWAY_REVOKED)
        self.tunnels.close_tenant(row.id)
        if remove:
            self.backups.tenant_removed(row.id)
            self.accounts.tenant_removed(row.id)
        what = "revoked and removed" if remove else "revoked"
        self.event("tenant_revoked", f"tenant {row.name} {what}; {count} certificate(s) revoked", row.id)
        return row

    # ------------------------------------------------------------------ enrollment
    async def enroll(self, *, tenant_id: str, secret: str, csr_pem: str, source: str) -> Enrolled:
        # The attempt counts before any work, so parallel attempts cannot slip past the limit.
        wait = self.enroll_limiter.begin(source, self.settings.enroll_failures_per_minute)
        if wait:
            raise DirectorError(429, f"too many failed enrollments from {source}; retry in {wait:.0f} s")
        row = self.store.tenant(tenant_id)
        # Same work and the same answer for unknown, used, expired or wrong: nothing to probe.
        refused = DirectorError(401, "enrollment refused: unknown tenant, wrong or already used credentials")
        phc = row.enroll_hash if row is not None and row.revoked_at is None else None
        async with self._enroll_slots.hold():
            good = await asyncio.to_thread(self.hasher.verify, secret, phc or self._dummy_hash)
        if row is None or phc is None:
            self._enroll_failed(source, row.id if row else None, "unknown tenant or no open credentials")
            raise refused
        if not good:
            self._enroll_failed(source, row.id, "wrong credentials")
            raise refused
        if row.enroll_expires_at is not None and row.enroll_expires_at < time.time():
            self._enroll_failed(source, row.id, "credentials expired")
            raise DirectorError(401, "enrollment refused: the credentials expired; ask the MSP for new ones")
        try:
            csr = pki.load_csr(csr_pem.encode())
            lifetime = dt.timedelta(hours=self.settings.client_cert_lifetime_hours)
            cert = self.authority.issue_tenant(csr, row.id, lifetime)
        except ValueError as exc:
            raise DirectorError(400, f"bad CSR: {exc}") from None
        if not self.store.consume_enrollment(row.id, phc):
            self._enroll_failed(source, row.id, "credentials replayed")
            raise refused
        serial = serial_hex(cert)
        with self.store.tx():
            self.store.add_certificate(serial, row.id, cert.not_valid_after_utc.timestamp())
            # New credentials replace the Transporter: every earlier certificate stops working now.
            superseded = self.store.supersede_certificates(row.id, serial)
            if superseded and self.cluster is not None:
                self.cluster.announce("superseded", tenant=row.id)
        self.enroll_limiter.succeeded(source)
        if superseded:
            self.hub.close_tenant(row.id, "certificate superseded by a new enrollment", GOAWAY_SUPERSEDED)
        self.event(
            "enrolled",
            f"Transporter enrolled from {source}",
            row.id,
            address=source,
            serial=serial,
            superseded=superseded,
        )
        return Enrolled(
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            ca_pem=self.authority.ca_pem,
            uplink_port=self.settings.uplink_port,
            settings=self.settings.for_transporter().model_dump(),
        )

    def _enroll_failed(self, source: str, tenant_id: str | None, why: str) -> None:
        self.event("enroll_failed", f"enrollment from {source} refused: {why}", tenant_id, address=source)

    def sign_renewal(self, tenant_id: str, csr_pem: bytes) -> tuple[str, float]:
        csr = pki.load_csr(csr_pem)
        cert = self.authority.issue_tenant(csr, tenant_id, dt.timedelta(hours=self.settings.client_cert_lifetime_hours))
        not_after = cert.not_valid_after_utc.timestamp()
        self.store.add_certificate(serial_hex(cert), tenant_id, not_after)
        return cert.public_bytes(serialization.Encoding.PEM).decode(), not_after

    async def renew(self, name: str) -> None:
        row, session = self.session_for(name, offline="its certificate is renewed when it connects")
        try:
            await self.hub.renew(session, lambda pem: self.sign_renewal(row.id, pem))
        except (ChannelClosed, StreamError, ValueError) as exc:
            raise DirectorError(502, f"renewal failed: {exc}") from None

    # ------------------------------------------------------------------ sessions
    def _session_started(self, session: Session) -> None:
        if self.cluster is not None:
            self.cluster.claim(session.tenant_id, session.connected_at, session.address)
        self.hub.spawn(session, self._after_connect(session))

    def _session_ended(self, session: Session) -> None:
        if self.cluster is not None:
            self.cluster.release(session.tenant_id, session.connected_at)

    async def _after_connect(self, session: Session) -> None:
        channel = session.channel
        try:
            resp = await channel.request("GET", "/v1/info", timeout=15)
            info = _site_info(session.tenant_id, resp) if resp.status == 200 else None
            current = self.settings.for_transporter()
            # A Transporter that reports the settings it holds is spared a push of the same ones
            # (a reconnect storm is then one request per session instead of two).
            if info is None or info.settings != current:
                await channel.request("PUT", "/v1/settings", current.model_dump_json().encode(), timeout=15)
            if info is not None:
                session.info = info
                if info.tenant_id != session.tenant_id:
                    log.warning(
                        "tenant %s reports tenant id %s; identity comes from the certificate",
                        session.tenant_id,
                        info.tenant_id,
                    )
                self.store.touch_status_later(session.tenant_id, version=info.version, hostname=info.hostname)
                if self.cluster is not None:
                    self.cluster.site_info(session.tenant_id, info.version, info.hostname)
            remaining = session.cert_not_after - time.time()
            if remaining < self.settings.client_cert_lifetime_hours * 3600 / 3:
                await self.hub.renew(session, lambda pem: self.sign_renewal(session.tenant_id, pem))
        except (ChannelClosed, StreamError, ValueError) as exc:
            log.info("tenant %s: post-connect exchange failed: %s", session.tenant_id, exc)

    def _live_session(
        self, tenant_id: str, revoked_at: float | None, elsewhere: dict[str, RemoteSession] | None = None
    ) -> Session | RemoteSession | None:
        """The tenant's live session: here, or (a tenant not revoked) on another live Director."""
        session = self.hub.sessions.get(tenant_id)
        if session is None and self.cluster is not None and revoked_at is None:
            if elsewhere is None:
                elsewhere = self.cluster.sessions_elsewhere()
            return elsewhere.get(tenant_id)
        return session

    def status(self, row: TenantRow, elsewhere: dict[str, RemoteSession] | None = None) -> dict[str, Any]:
        session = self._live_session(row.id, row.revoked_at, elsewhere)
        enrolled = row.enrolled_at is not None
        if isinstance(session, RemoteSession):
            assert self.cluster is not None
            peer = {p.id: p for p in self.cluster.peers()}.get(session.director_id)
            return {
                "online": True,
                "state": "online",
                "since": session.connected_at,
                "last_heartbeat": peer.heartbeat_at if peer else session.connected_at,
                "address": session.address,
                "version": session.version or row.version,
                "hostname": session.hostname or row.hostname,
                "enrolled": enrolled,
                "director": peer.name if peer else session.director_id,
            }
        if session is not None:
            return {
                "online": True,
                "state": "online",
                "since": session.connected_at,
                "last_heartbeat": session.last_heartbeat,
                "address": session.address,
                "version": session.info.version if session.info else row.version,
                "hostname": session.info.hostname if session.info else row.hostname,
                "enrolled": enrolled,
                "director": self.cluster.name if self.cluster is not None else None,
            }
        return {
            "online": False,
            "state": stored_state(row.kind, row.revoked_at, row.enrolled_at),
            "since": row.state_since,
            "last_heartbeat": row.last_seen,
            "address": row.last_address,
            "version": row.version,
            "hostname": row.hostname,
            "enrolled": enrolled,
        }

    def _channel_of(self, tenant_id: str) -> Channel | None:
        session = self.hub.sessions.get(tenant_id)
        return session.channel if session is not None and session.channel.is_open else None

    def online_ids(self) -> set[str]:
        """The tenants :meth:`status` says are online: a session here, or on another live Director
        (revoked tenants left out there), from the session registry alone, without reading a tenant."""
        here = set(self.hub.sessions)
        return here | self.cluster.online_elsewhere_ids() if self.cluster is not None else here

    def statuses(self, rows: list[TenantRow]) -> dict[str, dict[str, Any]]:
        """:meth:`status` of many tenants at once (one look at the cluster registry for all of them)."""
        elsewhere = None
        if self.cluster is not None:
            elsewhere = self.cluster.sessions_elsewhere([r.id for r in rows if r.id not in self.hub.sessions])
        return {r.id: self.status(r, elsewhere) for r in rows}

    def session_for(self, name: str, offline: str = "") -> tuple[TenantRow, Session]:
        """The tenant's live session here; elsewhere in the cluster the request is forwarded there."""
        row = self.tenant_or_404(name)
        session = self.hub.sessions.get(row.id)
        if session is None:
            owner = self._session_owner(row.id)
            if owner is not None:
                raise SessionElsewhere(owner, f"tenant {name!r}'s session")
            raise DirectorError(409, f"tenant {name!r} is not online" + (f"; {offline}" if offline else ""))
        return row, session

    def _session_owner(self, tenant_id: str) -> str | None:
        return self.cluster.owner(tenant_id) if self.cluster is not None else None

    # ------------------------------------------------------------------ the cluster tells us
    def _tenant_closed_elsewhere(self, tenant_id: str, why: str) -> None:
        debug = GOAWAY_REVOKED if why == "revoked" else GOAWAY_SUPERSEDED
        if self.hub.close_tenant(tenant_id, f"tenant {why} on another Director", debug):
            log.info("tenant %s %s on another Director: its session here is closed", tenant_id, why)
        self.tunnels.close_tenant(tenant_id)

    def _claimed_elsewhere(self, claims: list[tuple[str, float]]) -> None:
        for tenant_id, connected_at in claims:
            session = self.hub.sessions.get(tenant_id)
            if session is not None and session.connected_at < connected_at:
                session.channel.close("replaced by a newer session on another Director", debug=GOAWAY_REPLACED)

    def _settings_changed_elsewhere(self) -> None:
        old = self.settings
        new = self._load_settings()
        changed = [k for k in ExpertSettings.model_fields if getattr(old, k) != getattr(new, k)]
        if changed:
            self.settings = new
            log.info("Expert Settings changed on another Director: %s", ", ".join(changed))
            self._apply_live(old, new, changed)

    def _resync(self) -> None:
        """What notifications may have missed: settings, revoked certificates, newer sessions elsewhere."""
        self._settings_changed_elsewhere()
        if self.cluster is None or not self.hub.sessions:
            return
        local = list(self.hub.sessions.values())
        revoked = self.store.revoked_among([s.cert_serial for s in local])
        for session in local:
            if session.cert_serial in revoked:
                why = "revoked" if revoked[session.cert_serial] else "superseded"
                self._tenant_closed_elsewhere(session.tenant_id, why)
        newer = self.cluster.sessions_elsewhere([s.tenant_id for s in local])
        self._claimed_elsewhere([(t, r.connected_at) for t, r in newer.items()])

    # ------------------------------------------------------------------ settings
    async def change_settings(self, changes: dict[str, Any]) -> tuple[ExpertSettings, list[str]]:
        async with self._settings_lock:
            old = self.settings
            try:
                new = apply_changes(old, changes)
            except SettingsError as exc:
                raise DirectorError(422, str(exc)) from None
            changed = [k for k in ExpertSettings.model_fields if getattr(old, k) != getattr(new, k)]
            if not changed:
                return new, []
            if "uplink_port" in changed and new.uplink_port not in self.hub.ports:
                try:
                    await self.hub.listen(new.uplink_port)
                except OSError as exc:
                    msg = f"cannot listen on uplink port {new.uplink_port}: {exc.strerror}"
                    raise DirectorError(409, msg) from None
            self.settings = new
            with self.store.tx():
                self.store.save_settings(new.model_dump())
                if self.cluster is not None:
                    self.cluster.announce("settings")
            for key in changed:
                before, after = shown(key, getattr(old, key)), shown(key, getattr(new, key))
                self.event("setting_changed", f"{key}: {before!r} -> {after!r}", key=key, old=before, new=after)
            self._apply_live(old, new, changed)
            return new, changed

    def _apply_live(self, old: ExpertSettings, new: ExpertSettings, changed: list[str]) -> None:
        if "log_level" in changed:
            logsetup.set_level(new.log_level)
        if "tls_min_version" in changed:
            for ctx in (self.uplink_ctx, self.api_ctx):
                ctx.minimum_version = tls._min_version(new.tls_min_version)
        pushed = {
            "uplink_port",
            "setup_port",
            "heartbeat_interval",
            "heartbeat_misses",
            "reconnect_backoff_cap",
            "max_concurrent_tasks",
        }
        if "uplink_port" in changed:
            loop = asyncio.get_running_loop()

            async def push() -> None:
                await self._push_settings()

            task = loop.create_task(
                self.hub.move_to(
                    new.uplink_port, lambda: asyncio.ensure_future(push()), grace=max(30.0, 3 * new.heartbeat_interval)
                )
            )
            self._background(task)
        elif pushed & set(changed):
            self._background(asyncio.get_running_loop().create_task(self._push_settings()))

    async def _push_settings(self) -> None:
        body = self.settings.for_transporter().model_dump_json().encode()
        ok = await self.hub.broadcast("PUT", "/v1/settings", body)
        log.info("settings pushed to %d of %d Transporters", ok, len(self.hub.sessions))

    _bg: set[asyncio.Task[Any]]

    def _background(self, task: asyncio.Task[Any]) -> None:
        if not hasattr(self, "_bg"):
            self._bg = set()
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    # ------------------------------------------------------------------ run
    async def start(self) -> None:
        """Open the uplink listener and start the heartbeat; the API server is started beside it."""
        now = time.time()
        if self.cluster is not None:
            self.cluster.register()
        # A crash (kill -9) leaves no "disconnected" events; record the restart once for everyone
        # (with several Directors: everyone not online on another one).
        self.store.mark_offline_since(now, except_director=self.director_id if self.cluster else None)
        self.uplink_port = await self.hub.listen(self.settings.uplink_port)
        self.hub.start()
        if self.cluster is not None:
            self.cluster.start()
        self._background(asyncio.get_running_loop().create_task(self._flush_forever()))
        self.backups.start()
        interrupted = self.jobs.recover()
        if interrupted:
            log.warning("%d run(s) of the previous Director process marked interrupted", interrupted)
        self.alarms.start()
        self._background(asyncio.get_running_loop().create_task(self._housekeeping()))

    def started(self, setup_port: int) -> None:
        """The API answers on ``setup_port``: record it and the start, and publish the ports."""
        self.setup_port = setup_port
        self._publish_ports()
        self.event(
            "director_started",
            f"Director {tenantry.__version__} started",
            setup_port=self.setup_port,
            uplink_port=self.uplink_port,
        )
        log.info(
            "Director ready: setup https://%s:%d, uplink port %d, state %s",
            self.config.listen_host,
            self.setup_port,
            self.uplink_port,
            self.config.state_dir,
        )

    def _publish_ports(self) -> None:
        """``<state_dir>/ports.json``: what this Director listens on now (the firewall follows it)."""
        if not self.setup_port:
            return  # the API is not up yet; started() publishes
        try:
            firewall.publish(self.config.ports_path, self.setup_port, self.hub.ports, self.peer_port or None)
        except OSError as exc:
            log.error("cannot publish the ports to %s: %s", self.config.ports_path, exc)

    async def stop(self) -> None:
        """Close tunnels and sessions (Transporters are told to reconnect); the store stays open."""
        grace = self.settings.shutdown_grace
        log.info("shutting down: in-flight streams get up to %g s", grace)
        self.event("director_stopping", "graceful shutdown; Transporters told to reconnect")
        await self.tunnels.close_all()
        await self.jobs.stop()
        await self.alarms.stop()
        await self.backups.stop()
        await self.hub.shutdown(grace)
        for task in list(getattr(self, "_bg", ())):
            task.cancel()
        self.flush()
        if self.cluster is not None:
            await self.cluster.stop()

    def close(self) -> None:
        self.flush()
        self.store.close()


def ensure_admin_token(path: Path) -> str:
    """The admin token in ``path``, created (0600) when missing."""
    if path.exists():
        token = path.read_text().strip()
        if len(token) < 16:
            raise ValueError(f"admin token in {path} is shorter than 16 characters")
        return token
    token = secrets.token_urlsafe(32)
    pki.write_private(path, (token + "\n").encode())
    log.info("admin token created in %s (mode 0600)", path)
    return token


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _site_info(tenant_id: str, resp: Response) -> SiteInfo | None:
    """A Transporter's /v1/info, or ``None`` (logged by field name, never by value) when malformed."""
    try:
        return SiteInfo.model_validate_json(resp.body)
    except ValidationError as exc:
        log.warning("tenant %s sent malformed site info (%s); ignored", tenant_id, bad_fields(exc))
        return None
