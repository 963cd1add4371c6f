# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""vSphere client on pyVmomi that knows nothing of Ansible.

Modules bind it through ``_vsphere_base``; inventory plugins, the lab and the
tests use it directly.  Every failure is one of the typed errors below, with a
message that says what was wrong and what to do.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

try:
    from pyVim.connect import SmartConnect
    from pyVmomi import vim, vmodl

    HAS_PYVMOMI = True
    PYVMOMI_IMPORT_ERROR: Exception | None = None
except ImportError as exc:  # pragma: no cover - exercised only without pyVmomi
    # Names stay importable so modules can report missing_required_lib cleanly.
    SmartConnect = vim = vmodl = None  # type: ignore[assignment]
    HAS_PYVMOMI = False
    PYVMOMI_IMPORT_ERROR = exc


TASK_PROPERTIES = ("info.state", "info.error", "info.result", "info.completeTime")
TASK_ENDED = ("success", "error")
# How long the thread that started a task whose VM may ask a question watches it itself (reading
# the task and the question together, answering at once) before the step's collector takes over.
QUESTION_WATCH_SECONDS = 5.0


class VSphereError(Exception):
    """Base of every error this client raises."""


class ConnectionFailed(VSphereError):
    """The endpoint could not be reached or its TLS certificate was refused."""


class AuthenticationFailed(VSphereError):
    """The endpoint answered but refused the credentials."""


class InvalidRequest(VSphereError):
    """The input, or the objects it points at, does not allow the change; ``errors`` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class NotFound(VSphereError):
    """A named object does not exist."""


class TaskFailed(VSphereError):
    """One or more vSphere tasks ended in error."""

    def __init__(self, message: str, failures: dict[str, str]) -> None:
        super().__init__(message)
        self.failures = failures


@dataclass(frozen=True)
class ConnectionParams:
    """Where and how to connect.  ``password`` is never part of ``repr``."""

    hostname: str
    username: str
    password: str = field(repr=False)
    port: int = 443
    validate_certs: bool = True
    ca_file: str | None = None
    timeout: int = 60


def connection_params(params: Mapping[str, Any]) -> ConnectionParams:
    """An endpoint given as a module's connection options (``hostname``, ``port``, ``username``, ...)."""
    return ConnectionParams(
        hostname=params["hostname"],
        username=params["username"],
        password=params["password"],
        port=params["port"],
        validate_certs=params["validate_certs"],
        ca_file=params.get("ca_file"),
        timeout=params["timeout"],
    )


def target_params(target: Mapping[str, Any]) -> ConnectionParams:
    """An endpoint given as a suboption (``name``, ``hostname``, ``port``, ``username``, ...)."""
    return ConnectionParams(
        hostname=target["hostname"],
        username=target["username"],
        password=target["password"],
        port=target.get("port") or 443,
        validate_certs=target.get("validate_certs", True),
        ca_file=target.get("ca_file"),
        timeout=target.get("timeout") or 60,
    )


def fault_message(exc: BaseException) -> str:
    """The human part of a vSphere fault (``msg`` or the first fault message), else ``str``."""
    msg = getattr(exc, "msg", None)
    if msg:
        return str(msg)
    for item in getattr(exc, "faultMessage", None) or []:
        text = getattr(item, "message", None)
        if text:
            return str(text)
    return str(exc) or type(exc).__name__


def _ssl_context(params: ConnectionParams) -> ssl.SSLContext:
    if not params.validate_certs:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=params.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectionFailed(
            "cannot load ca_file %r: %s; give a readable PEM bundle of the CA that signed the vCenter certificate"
            % (params.ca_file, exc)
        ) from exc


def connect(params: ConnectionParams) -> Any:
    """Log in and return a pyVmomi ``ServiceInstance``; raise a typed error otherwise."""
    if not HAS_PYVMOMI:
        raise VSphereError("pyVmomi is required: %s" % PYVMOMI_IMPORT_ERROR)
    where = "%s:%d" % (params.hostname, params.port)
    try:
        return SmartConnect(
            host=params.hostname,
            user=params.username,
            pwd=params.password,
            port=params.port,
            sslContext=_ssl_context(params),
            connectionPoolTimeout=params.timeout,
        )
    except vim.fault.InvalidLogin as exc:
        raise AuthenticationFailed(
            "vCenter %s refused the login for user %r: %s; check username and password"
            % (where, params.username, fault_message(exc))
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise ConnectionFailed(
            "TLS certificate of %s could not be verified (%s); give ca_file with the CA that signed it, "
            "or set validate_certs=false for a lab" % (where, exc.verify_message or exc)
        ) from exc
    except (ssl.SSLError, socket.gaierror, TimeoutError, ConnectionError, OSError) as exc:
        raise ConnectionFailed("cannot reach vCenter at %s: %s" % (where, exc)) from exc
    except vmodl.MethodFault as exc:
        raise VSphereError("vCenter %s refused the connection: %s" % (where, fault_message(exc))) from exc


def connect_all(endpoints: Sequence[tuple[str, ConnectionParams]]) -> list[VSphereClient]:
    """Log in to every endpoint at once; returns the clients in order.

    ``endpoints`` holds ``(label, params)``.  When a login fails, the others are logged out and its
    error is raised, its message prefixed with the endpoint's label (when it has one).
    """
    with ThreadPoolExecutor(max_workers=max(1, len(endpoints)), thread_name_prefix="vsphere-login") as pool:
        futures = [pool.submit(VSphereClient, params) for _label, params in endpoints]
    clients: list[VSphereClient] = []
    failure: VSphereError | None = None
    for (label, _params), future in zip(endpoints, futures, strict=True):
        try:
            clients.append(future.result())
        except VSphereError as exc:
            if failure is None:
                failure = VSphereError("%s: %s" % (label, exc)) if label else exc
    if failure is not None:
        close_all(clients)
        raise failure
    return clients


def close_all(clients: Sequence[VSphereClient]) -> None:
    """Log out of every session at once (each logout is a round trip; a run's end waits for them)."""
    if len(clients) < 2:
        for client in clients:
            client.close()
        return
    with ThreadPoolExecutor(max_workers=len(clients), thread_name_prefix="vsphere-logout") as pool:
        list(pool.map(VSphereClient.close, clients))


class SharedLimit(Protocol):
    """Slots shared with other processes (``_slots.Slots``): ``acquire`` waits for one, ``release`` frees it."""

    def acquire(self) -> Any: ...

    def release(self, token: Any) -> None: ...


class VSphereClient:
    """A logged-in session with bulk reads and concurrent task waits.

    ``slots``: when set, every task or call started through ``run_tasks`` (and ``run_calls`` given
    them) holds one of these slots while in flight, so that several processes together stay under
    one concurrency limit toward this endpoint.  Reads do not take slots.
    """

    def __init__(self, params: ConnectionParams) -> None:
        self.params = params
        self.si = connect(params)
        self.content = self.si.RetrieveContent()
        self.slots: SharedLimit | None = None
        self.keep_connections(16)

    def keep_connections(self, count: int) -> None:
        """Keep up to ``count`` idle connections for reuse (pyVmomi keeps 5, so every step with a
        larger fan-out would log its extra threads in anew: a TLS handshake each)."""
        stub = getattr(self.si, "_stub", None)
        if stub is not None and getattr(stub, "poolSize", count) < count:
            stub.poolSize = count

    def close(self) -> None:
        """Log out: one round trip (pyVim's ``Disconnect`` reads the service content again first)."""
        # Logging out of a dead session is not an error worth raising.
        with contextlib.suppress(Exception):
            self.content.sessionManager.Logout()

    def __enter__(self) -> VSphereClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_vcenter(self) -> bool:
        return bool(self.content.about.apiType == "VirtualCenter")

    # ----------------------------------------------------------------- reads
    def retrieve(self, vimtype: Any, properties: Sequence[str], root: Any = None) -> list[dict[str, Any]]:
        """Every object of ``vimtype`` under ``root`` with the given properties, in ONE round trip.

        Each result is a dict of the requested properties (unset ones absent) plus ``obj``
        (the managed object) and ``moid``.
        """
        return self.retrieve_types({vimtype: properties}, root)[vimtype]

    def retrieve_types(
        self, properties: Mapping[Any, Sequence[str]], root: Any = None
    ) -> dict[Any, list[dict[str, Any]]]:
        """Like ``retrieve`` for several types at once (one view, one collector call): rows by type."""
        types = list(properties)
        view = self.content.viewManager.CreateContainerView(root or self.content.rootFolder, types, True)
        try:
            spec = vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[
                    vmodl.query.PropertyCollector.ObjectSpec(
                        obj=view,
                        skip=True,
                        selectSet=[
                            vmodl.query.PropertyCollector.TraversalSpec(
                                name="view", path="view", skip=False, type=vim.view.ContainerView
                            )
                        ],
                    )
                ],
                propSet=[
                    vmodl.query.PropertyCollector.PropertySpec(type=vimtype, pathSet=list(paths))
                    for vimtype, paths in properties.items()
                ],
            )
            rows = _collect(self.content.propertyCollector, spec)
        finally:
            view.Destroy()
        by_type: dict[Any, list[dict[str, Any]]] = {vimtype: [] for vimtype in types}
        for row in rows:
            for vimtype in types:
                if isinstance(row["obj"], vimtype):
                    by_type[vimtype].append(row)
                    break
        return by_type

    def find(self, vimtype: Any, name: str, root: Any = None) -> Any | None:
        """The object of ``vimtype`` called ``name`` (or with that moid), or ``None``."""
        for row in self.retrieve(vimtype, ["name"], root):
            if row.get("name") == name or row["moid"] == name:
                return row["obj"]
        return None

    def get(self, vimtype: Any, name: str, root: Any = None) -> Any:
        """Like ``find`` but raises ``NotFound`` naming the type, the name and what exists."""
        obj = self.find(vimtype, name, root)
        if obj is None:
            known = sorted(str(r.get("name")) for r in self.retrieve(vimtype, ["name"], root))
            kind = getattr(vimtype, "_wsdlName", str(vimtype))
            raise NotFound("%s %r not found; existing: %s" % (kind, name, ", ".join(known) or "none"))
        return obj

    # ----------------------------------------------------------------- tasks
    def run_tasks(
        self,
        starters: Iterable[tuple[str, Callable[[], Any]]],
        max_parallel: int = 16,
        raise_on_error: bool = True,
        timeout: float = 3600,
        ended: dict[str, Any] | None = None,
        questions: Mapping[str, tuple[Any, Callable[[Any], str | None]]] | None = None,
    ) -> dict[str, Any]:
        """Start many vSphere tasks with bounded fan-out and wait for all with ONE property collector.

        ``starters`` yields ``(key, start)``; ``start()`` issues the call and returns its
        ``vim.Task``.  Start calls run on up to ``max_parallel`` threads (pyVmomi's stub keeps
        a connection pool) and at most ``max_parallel`` objects are in flight at once, starting
        or running (with ``slots`` set, each also holds one of those slots, shared with other
        processes); a finished one frees its place at once.  The starting thread reads its
        task's state once: a task that ended inside its start call (a quick task; every task
        of the lab's simulator) is settled there, the others are watched by a single private
        property collector.  Returns ``{key: task result or error message}``; with
        ``raise_on_error`` a ``TaskFailed`` names every failed key after all tasks ended (none
        is abandoned half way).  ``ended``, when given, receives each task's ``completeTime``
        (vCenter's clock) by key.

        ``questions`` (``{key: (vm, answer)}``): a task that waits for its VM's answer (a power-on
        stopped at "moved or copied?") is answered.  The thread that started it reads the task and
        the VM's ``runtime.question`` together right after the start, answers at once and reads
        again, for up to ``QUESTION_WATCH_SECONDS`` (the power-on usually ends inside the answer);
        a task still running then is watched by the collector, which also watches the question.
        ``answer(question)`` returns the choice's key for ``AnswerVM``, or ``None``: the key then
        fails with the question's text (the task is left waiting, for an operator to answer).
        """
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.keep_connections(max_parallel + 2)  # the starting threads, the collector's waits
        pending = deque(starters)
        outcomes: dict[str, Any] = {}
        failures: dict[str, str] = {}
        starting: dict[Future[_Started], str] = {}
        running: dict[str, tuple[str, Any]] = {}  # task moid -> (key, slot token)
        states: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        collector = self.content.propertyCollector.CreatePropertyCollector()
        version = ""
        asking: dict[str, str] = {}  # VM moid -> the key of its running task
        answered: set[str] = set()  # question ids answered

        def fail(key: str, message: str) -> None:
            failures[key] = outcomes[key] = message

        def settle(key: str, state: dict[str, Any]) -> bool:
            """Record an ended task's outcome; False while it runs."""
            if ended is not None and state.get("info.completeTime") is not None:
                ended[key] = state["info.completeTime"]
            if state.get("info.state") == vim.TaskInfo.State.success:
                outcomes[key] = state.get("info.result")
            elif state.get("info.state") == vim.TaskInfo.State.error:
                fail(key, fault_message(state.get("info.error") or Exception("unknown error")))
            else:
                return False
            return True

        def ask(moid: str, question: Any) -> None:
            """A running task's VM asks a question: answer it, or fail the key with its text."""
            key = asking.get(moid)
            task = next((t for t, (k, _token) in running.items() if k == key), None)
            if key is None or task is None or question is None or question.id in answered:
                return
            vm, answer = (questions or {})[key]
            answered.add(question.id)
            message = answer_question(vm, question, answer)
            if message is not None:
                fail(key, message)
                self._release(running.pop(task)[1])

        try:
            with ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="vsphere-task") as pool:
                while pending or starting or running:
                    while pending and len(starting) + len(running) < max_parallel:
                        key, start = pending.popleft()
                        asks = questions.get(key) if questions else None
                        starting[pool.submit(self._start, start, asks)] = key
                    if starting and not running:
                        wait(starting, return_when=FIRST_COMPLETED)
                    started = []
                    for future in [f for f in starting if f.done()]:
                        key = starting.pop(future)
                        try:
                            begun = future.result()
                        except vmodl.MethodFault as exc:
                            fail(key, fault_message(exc))
                            continue
                        answered.update(begun.answered)
                        if begun.error is not None:  # its VM asks what we cannot answer: left waiting
                            fail(key, begun.error)
                            continue
                        if not settle(key, begun.state):
                            running[begun.task._moId] = (key, begun.token)
                            started.append(begun.task)
                    if started:
                        collector.CreateFilter(_task_filter(started), True)
                        keys = [running[t._moId][0] for t in started]
                        vms = {k: questions[k][0] for k in keys if questions and k in questions}
                        asking.update({vm._moId: k for k, vm in vms.items()})
                        if vms:
                            collector.CreateFilter(_question_filter(list(vms.values())), True)
                    if not running:
                        continue
                    if time.monotonic() > deadline:
                        for key, token in running.values():
                            self._release(token)
                            fail(key, "did not finish within %d s" % timeout)
                        running.clear()
                        break
                    # Poll briefly while start calls are still in flight, else block on the collector.
                    max_wait = 1 if starting else max(1, min(60, int(deadline - time.monotonic())))
                    update = collector.WaitForUpdatesEx(
                        version, vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=max_wait)
                    )
                    if update is None:
                        continue
                    version = update.version
                    for filter_set in update.filterSet or []:
                        for obj_update in filter_set.objectSet or []:
                            moid = obj_update.obj._moId
                            state = states.setdefault(moid, {})
                            for change in obj_update.changeSet or []:
                                state[change.name] = change.val
                            if moid in asking:
                                ask(moid, state.get("runtime.question"))
                                continue
                            if moid in running and settle(running[moid][0], state):
                                self._release(running.pop(moid)[1])
        finally:
            for _key, token in running.values():
                self._release(token)
            for future in starting:  # left by an error: every start has ended (the pool waited)
                if future.done() and future.exception() is None:
                    self._release(future.result().token)
            collector.Destroy()
        if failures and raise_on_error:
            detail = "; ".join("%s: %s" % item for item in sorted(failures.items()))
            raise TaskFailed("%d of %d vSphere tasks failed: %s" % (len(failures), len(outcomes), detail), failures)
        return outcomes

    def _start(self, start: Callable[[], Any], asks: tuple[Any, Callable[[Any], str | None]] | None = None) -> _Started:
        """Take a slot (if shared), start the task and read its state once; a settled task frees the slot.

        ``asks`` (``(vm, answer)``): the task may stop at a question of ``vm``; this thread then
        watches both and answers (``_watch``), so the task usually ends here.
        """
        token = self.slots.acquire() if self.slots is not None else None
        try:
            task = start()
            try:
                if asks is None:
                    rows = retrieve_objects(self, [task], TASK_PROPERTIES)
                    begun = _Started(task, rows[0] if rows else {}, token)
                else:
                    begun = self._watch(task, asks[0], asks[1], token)
            except vmodl.MethodFault:
                begun = _Started(task, {}, token)  # the collector will tell
        except BaseException:
            self._release(token)
            raise
        if begun.error is not None or begun.state.get("info.state") in TASK_ENDED:
            self._release(token)
            begun.token = None
        return begun

    def _watch(self, task: Any, vm: Any, answer: Callable[[Any], str | None], token: Any) -> _Started:
        """Read ``task`` and ``vm``'s question together until the task ends or ``QUESTION_WATCH_SECONDS``
        pass, answering each new question at once (a power-on stopped at "moved or copied?")."""
        begun = _Started(task, {}, token)
        deadline = time.monotonic() + QUESTION_WATCH_SECONDS
        pause = 0.02
        while True:
            begun.state, question = _task_and_question(self, task, vm)
            if begun.state.get("info.state") in TASK_ENDED:
                return begun
            if question is not None and question.id not in begun.answered:
                begun.answered.add(question.id)
                begun.error = answer_question(vm, question, answer)
                if begun.error is not None:
                    return begun
                continue  # read again at once: the answer usually ends the task
            if time.monotonic() >= deadline:
                return begun
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def _release(self, token: Any) -> None:
        if self.slots is not None and token is not None:
            self.slots.release(token)


@dataclass
class _Started:
    task: Any
    state: dict[str, Any]
    token: Any  # the shared slot it holds while it runs (None: none, or already freed)
    answered: set[str] = field(default_factory=set)  # ids of the questions its starting thread answered
    error: str | None = None  # set when its VM asks a question that cannot be answered


def _task_and_question(client: VSphereClient, task: Any, vm: Any) -> tuple[dict[str, Any], Any]:
    """A task's state and its VM's pending question (or ``None``), in ONE round trip."""
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=task), pc.ObjectSpec(obj=vm)],
        propSet=[
            pc.PropertySpec(type=vim.Task, pathSet=list(TASK_PROPERTIES)),
            pc.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.question"]),
        ],
    )
    rows = {row["moid"]: row for row in _collect(client.content.propertyCollector, spec)}
    return rows.get(task._moId, {}), rows.get(vm._moId, {}).get("runtime.question")


def answer_question(vm: Any, question: Any, answer: Callable[[Any], str | None]) -> str | None:
    """Answer ``vm``'s ``question`` with ``answer(question)``; ``None`` when answered, else why not.

    A question answered meanwhile (``InvalidArgument`` on ``questionId``: it is gone) counts as answered.
    """
    choice = answer(question)
    if choice is None:
        return "waits for an answer to: %s" % question_text(question)
    try:
        vm.AnswerVM(questionId=question.id, answerChoice=choice)
    except vmodl.fault.InvalidArgument as exc:
        if getattr(exc, "invalidProperty", None) != "questionId":
            return "answering %r: %s" % (question_text(question), fault_message(exc))
    except vmodl.MethodFault as exc:
        return "answering %r: %s" % (question_text(question), fault_message(exc))
    return None


def _task_filter(tasks: Sequence[Any]) -> Any:
    return vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=t) for t in tasks],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.Task, pathSet=list(TASK_PROPERTIES))],
    )


def _question_filter(vms: Sequence[Any]) -> Any:
    return vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=vm) for vm in vms],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.question"])],
    )


def question_text(question: Any) -> str:
    """A VM question's text without its message id prefix (``msg.uuid.altered:This virtual ...``)."""
    text = str(getattr(question, "text", "") or "")
    for message in getattr(question, "message", None) or []:
        if text.startswith(str(message.id) + ":"):
            text = text[len(str(message.id)) + 1 :]
    return " ".join(text.split())


def question_ids(question: Any) -> set[str]:
    """The message ids a VM question carries (``msg.uuid.altered`` for "moved or copied?")."""
    ids = {str(m.id) for m in getattr(question, "message", None) or []}
    text = str(getattr(question, "text", "") or "")
    if ":" in text.split("\n", 1)[0]:
        ids.add(text.split(":", 1)[0])
    return ids


def choice_key(question: Any, *labels: str) -> str | None:
    """The key of the question's choice whose label (``button.uuid.movedTheVM``) or summary is one of ``labels``."""
    wanted = {label.lower() for label in labels}
    for choice in getattr(getattr(question, "choice", None), "choiceInfo", None) or []:
        if {str(choice.label).lower(), str(choice.summary).replace("_", "").lower()} & wanted:
            return str(choice.key)
    return None


def run_calls(
    calls: Iterable[tuple[str, Callable[[], Any]]],
    max_parallel: int = 16,
    raise_on_error: bool = True,
    slots: SharedLimit | None = None,
) -> dict[str, Any]:
    """Make many synchronous vSphere calls (no task, e.g. ``AddPortGroup``) on up to ``max_parallel`` threads.

    The counterpart of ``VSphereClient.run_tasks`` for methods that answer in the call itself
    (with ``slots``, each call also holds a shared slot while it runs).  ``calls`` yields
    ``(key, call)``.  Returns ``{key: result or error message}``; with ``raise_on_error`` a
    ``TaskFailed`` names every failed key after all calls ended.
    """
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1")
    outcomes: dict[str, Any] = {}
    failures: dict[str, str] = {}

    def limited(call: Callable[[], Any]) -> Callable[[], Any]:
        if slots is None:
            return call

        def go() -> Any:
            token = slots.acquire()
            try:
                return call()
            finally:
                slots.release(token)

        return go

    with ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="vsphere-call") as pool:
        futures = {pool.submit(limited(call)): key for key, call in calls}
        for future, key in futures.items():
            try:
                outcomes[key] = future.result()
            except vmodl.MethodFault as exc:
                failures[key] = outcomes[key] = fault_message(exc)
    if failures and raise_on_error:
        detail = "; ".join("%s: %s" % item for item in sorted(failures.items()))
        raise TaskFailed("%d of %d vSphere calls failed: %s" % (len(failures), len(outcomes), detail), failures)
    return outcomes


def retrieve_objects(client: VSphereClient, objects: Sequence[Any], properties: Sequence[str]) -> list[dict[str, Any]]:
    """The given properties of specific managed objects (all of one type), in ONE round trip.

    Like ``VSphereClient.retrieve`` but for known objects rather than a container: each
    result is a dict of the properties (unset ones absent) plus ``obj`` and ``moid``.
    """
    if not objects:
        return []
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj) for obj in objects],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(objects[0]), pathSet=list(properties))],
    )
    return _collect(client.content.propertyCollector, spec)


def _collect(collector: Any, spec: Any) -> list[dict[str, Any]]:
    """Every page of one RetrievePropertiesEx: a dict of the properties (unset ones absent), ``obj`` and ``moid``."""
    results: list[dict[str, Any]] = []
    page = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
    while page is not None:
        for item in page.objects:
            row: dict[str, Any] = {"obj": item.obj, "moid": item.obj._moId}
            for prop in item.propSet or []:
                row[prop.name] = prop.val
            results.append(row)
        page = collector.ContinueRetrievePropertiesEx(page.token) if page.token else None
    return results
