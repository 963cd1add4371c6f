"""Issue 13, items 3, 6 and 7: an *enrolled* tenant abusing its uplink session: control-frame floods,
forged strings in what it reports, and a refused handshake as the Director logs it.

The attacker holds a real tenant certificate (its Transporter is stopped and the certificate
used by raw TLS + HTTP/2 code); the other tenant is a real Transporter.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import attacks
import pytest
from attacks import PING, SETTINGS, frame
from services_harness import DirectorProc, TransporterProc, enroll_and_run, wait_for

pytestmark = pytest.mark.integration


def _dashboard_ms(director: DirectorProc, name: str) -> float:
    t0 = time.monotonic()
    director.api("GET", f"/api/v1/tenants/{name}/dashboard")
    return (time.monotonic() - t0) * 1000


def _flood(director: DirectorProc, state: Path, payload: bytes, count: int, result: dict[str, object]) -> None:
    """Send ``count`` frames of ``payload`` on a tenant's uplink and never read the socket."""
    batch = payload * 4096
    sent = 0
    try:
        with attacks.uplink_socket("127.0.0.1", director.uplink_port, state) as s:
            s.sendall(frame(SETTINGS, 0, 0, b""))
            while sent < count:
                s.sendall(batch)
                sent += 4096
    except OSError as exc:
        result["error"] = exc
    result["sent"] = sent


def _flood_while_measuring(
    director: DirectorProc, flooder: TransporterProc, payload: bytes, count: int
) -> tuple[list[float], dict[str, object], float]:
    """The bystander's dashboard call during the flood, in ms more than its median without a flood; what
    the flood cost; and how much the Director grew."""
    assert director.proc is not None
    idle = sorted(_dashboard_ms(director, "tenant-b") for _ in range(7))[3]
    result: dict[str, object] = {}
    thread = threading.Thread(target=_flood, args=(director, flooder.state, payload, count, result))
    base = attacks.rss_mib(director.proc.pid)
    thread.start()
    during, peak = [], base
    while True:  # at least one measurement, even when the flood is cut off before the first ends
        during.append(_dashboard_ms(director, "tenant-b") - idle)
        peak = max(peak, attacks.rss_mib(director.proc.pid))
        if not thread.is_alive():
            break
    thread.join()
    return during, result, peak - base


def _not_delayed(director: DirectorProc, during: list[float]) -> None:
    """A flood does not delay another tenant: no call more than 100 ms slower than the median without a
    flood, beyond what the machine's own noise gives the same call without a flood (measured after it:
    on a loaded test machine one call in a few dozen is that slow with no flood at all)."""
    assert during, "the bystander was never measured"
    idle = [_dashboard_ms(director, "tenant-b") for _ in range(max(7, len(during)))]
    noise = max(idle) - sorted(idle)[len(idle) // 2]
    if len(during) >= 5:  # a flood cut off at once leaves one or two samples: no median to speak of
        median = sorted(during)[len(during) // 2]
        assert median < 50, f"tenant-b delayed by {median:.0f} ms (median of {len(during)} calls)"
    assert max(during) < 100 + noise, f"tenant-b delayed by up to {max(during):.0f} ms (noise {noise:.0f} ms)"


@pytest.fixture
def flooder(director: DirectorProc, two_online: tuple[TransporterProc, ...]) -> TransporterProc:
    a, _b = two_online
    a.stop()  # its certificate is the attacker's
    return a


def test_a_ping_flood_gets_goaway_and_never_delays_another_tenant(
    director: DirectorProc, flooder: TransporterProc
) -> None:
    during, result, grew = _flood_while_measuring(director, flooder, frame(PING, 0, 0, b"12345678"), 1_000_000)
    assert "PING flood" in director.log()
    assert int(str(result["sent"])) < 1_000_000, "the Director never cut the flood off"
    assert grew < 5, f"Director grew {grew:.1f} MiB"
    _not_delayed(director, during)
    assert director.online("tenant-b")


def test_a_settings_flood_gets_goaway(director: DirectorProc, flooder: TransporterProc) -> None:
    during, result, grew = _flood_while_measuring(director, flooder, frame(SETTINGS, 0, 0, b""), 2_000_000)
    assert "SETTINGS flood" in director.log()
    assert int(str(result["sent"])) < 2_000_000
    assert grew < 5
    _not_delayed(director, during)


def test_a_peer_that_does_not_read_its_replies_is_not_read_either(tmp_path: Path) -> None:
    """With the control-frame budget out of the way, the write high-water mark alone must bound what
    unread PING ACKs cost: the Director stops reading from that peer."""
    director = DirectorProc(tmp_path, {"control_frames_per_second": 100000}).start()
    flooder = TransporterProc(tmp_path, "flooder")
    try:
        enroll_and_run(director, flooder)
        wait_for(lambda: director.online("flooder"), 30, "flooder online")
        flooder.stop()
        assert director.proc is not None
        base = attacks.rss_mib(director.proc.pid)
        result: dict[str, object] = {}
        # 1 million PINGs = 17 MB of ACKs the Director would queue if it kept reading.
        thread = threading.Thread(
            target=_flood, args=(director, flooder.state, frame(PING, 0, 0, b"12345678"), 1_000_000, result)
        )
        thread.start()
        thread.join(20)  # the flooder blocks: the Director no longer reads it
        assert attacks.rss_mib(director.proc.pid) - base < 5
        assert thread.is_alive() or int(str(result["sent"])) < 1_000_000
        assert director.api("GET", "/api/v1/health", auth=False)["status"] == "ok"
    finally:
        director.stop()  # ends the flood thread's socket
        flooder.stop()


def test_forged_strings_from_a_transporter_are_bounded_and_logged_escaped(
    director: DirectorProc, flooder: TransporterProc
) -> None:
    forged = {
        "tenant_id": "x\n2026-01-01 00:00:00,000 ERROR tenantry.director: FORGED",
        "version": "1.0",
        "hostname": "h" * 200_000,
        "started_at": 0,
    }
    with attacks.uplink_socket("127.0.0.1", director.uplink_port, flooder.state) as s:
        seen = attacks.fake_transporter(s, {"/v1/info": json.dumps(forged).encode()}, seconds=3)
    assert "/v1/info" in seen
    status = director.api("GET", "/api/v1/status")["tenants"]["tenant-a"]
    assert status["hostname"] != forged["hostname"] and len(json.dumps(status)) < 2000
    log = director.log()
    assert not any(line.endswith("FORGED") and line.startswith("2026-01-01") for line in log.splitlines())
    assert "malformed site info (hostname, tenant_id)" in log


def test_a_refused_handshake_is_one_line_without_a_traceback(
    director: DirectorProc, two_online: tuple[TransporterProc, ...]
) -> None:
    a, _b = two_online
    director.api("POST", "/api/v1/tenants/tenant-a/revoke")
    a.stop()
    before = len(director.log().splitlines())
    with attacks.uplink_socket("127.0.0.1", director.uplink_port, a.state) as s:
        s.sendall(attacks.PREFACE + frame(SETTINGS, 0, 0, b""))
        answer = attacks.drain(s, timeout=5)
    assert b"refused: tenant revoked" in answer  # the GOAWAY debug data says why
    time.sleep(0.5)
    new = director.log().splitlines()[before:]
    assert not [line for line in new if "Traceback" in line or " ERROR " in line], new
    assert len([line for line in new if "refused" in line]) == 1, new
