"""The power-on's "moved or copied?" question is answered by the thread that started the power-on.

Each VM failed over was registered at another host, so its first power-on stops at vSphere's question
(the strict simulator asks it as ESXi does, and sets ``runtime.question`` before ``PowerOnVM_Task``
returns).  The thread that started the power-on reads the task and the question at once and answers
it; the power-on then ends inside that ``AnswerVM`` call.  Before, the question was only seen by the
step's property collector (``WaitForUpdatesEx``), whose rounds the simulator, like vCenter, spaces out
(250 ms): the power-on step of 100 VMs took 22.9 s against the bench's latency model, 1.6 s
after (tests/bench/README.md).

Observable here, without timing anything: every vSphere call of the run passes a TLS relay that
records it, and a failover whose every task ends before or inside the call that answers it needs no
collector round at all.  Counted: ``WaitForUpdatesEx`` requests (none), ``AnswerVM`` requests (one per
VM), and the outcome (each VM on, no question left, its UUID kept: answered "moved").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import failoverlab as fl
import pytest

from tenantry.lab import ensure_tls

pytestmark = pytest.mark.integration

SOAP_METHOD = re.compile(rb"<soapenv:Body><(\w+) xmlns=")


def methods(requests: list[bytes]) -> list[str]:
    """The SOAP method of every request the relay saw, in the order of each connection."""
    return [m.decode() for r in requests for m in SOAP_METHOD.findall(r)]


@pytest.mark.parametrize("mode", ["failover", "test"])
def test_the_question_is_answered_in_the_starting_thread(lab_tenant: Any, lab_state_dir: Path, mode: str) -> None:
    t = lab_tenant("pq", vms=6)
    uuids = {name: vm.config.uuid for name, vm in fl.vms_of(t.target_si).items()}
    tls = ensure_tls(lab_state_dir)
    trace = fl.SoapTrace(t.vcenter, tls.cert_file, tls.key_file)
    t.vcenter = trace.endpoint  # type: ignore[assignment]
    try:
        rc, out = t.run(mode=mode, max_parallel=4)  # two rounds of starts: a later start joins a running step
    finally:
        trace.close()
    assert rc == 0, out
    calls = methods(trace.requests())
    assert calls.count("PowerOnVM_Task") == len(t.vms), calls
    assert calls.count("AnswerVM") == len(t.vms)  # each question answered once
    assert calls.count("WaitForUpdatesEx") == 0  # ... by the thread that started the power-on
    vms = t.production_vms("test-failover" if mode == "test" else "")
    assert sorted(vms) == t.vms
    for name, vm in vms.items():
        assert vm.runtime.powerState == "poweredOn" and vm.runtime.question is None
        # Failover answers "I Moved It" (the same VM: UUID kept), a test copy "I Copied It" (a new UUID).
        assert (vm.config.uuid == uuids[name]) is (mode == "failover"), name
    [power] = [s for s in out["report"]["steps"] if s["step"] == "power_on"]
    assert (power["done"], power["failed"], power["retried"]) == (len(t.vms), 0, 0)
