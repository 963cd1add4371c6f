"""Expert Settings registry, configuration loading and small building blocks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tenantry.director import __main__ as director_main
from tenantry.director.config import ConfigError, load_config
from tenantry.director.limits import AttemptLimiter
from tenantry.director.settings import ExpertSettings, SettingsError, apply_changes, describe
from tenantry.protocol import psk
from tenantry.protocol.backoff import Backoff
from tenantry.protocol.enrollment import EnrollmentKey
from tenantry.protocol.messages import split_target
from tenantry.transporter import __main__ as transporter_main
from tenantry.transporter.config import load_config as load_transporter_config


def test_defaults_match_the_issue() -> None:
    s = ExpertSettings()
    assert (s.setup_port, s.uplink_port, s.max_concurrent_tasks, s.reconnect_backoff_cap) == (4443, 6702, 6, 60.0)
    reg = describe()
    assert reg["max_concurrent_tasks"]["maximum"] == 1024
    assert reg["tls_min_version"]["enum"] == ["1.2", "1.3"]


def test_unknown_and_out_of_range_are_refused_with_what_is_allowed() -> None:
    current = ExpertSettings()
    with pytest.raises(SettingsError, match=r"unknown setting\(s\) bogus; allowed settings: .*uplink_port"):
        apply_changes(current, {"bogus": 1})
    with pytest.raises(SettingsError, match=r"uplink_port=70000 refused .* allowed: integer from 1 to 65535"):
        apply_changes(current, {"uplink_port": 70000})
    with pytest.raises(SettingsError, match="one of DEBUG, INFO, WARNING, ERROR"):
        apply_changes(current, {"log_level": "LOUD"})
    with pytest.raises(SettingsError, match="non-empty"):
        apply_changes(current, {})
    new = apply_changes(current, {"max_concurrent_tasks": 1024, "heartbeat_interval": "2.5"})
    assert new.max_concurrent_tasks == 1024 and new.heartbeat_interval == 2.5
    assert current.max_concurrent_tasks == 6  # untouched


def test_full_jitter_backoff_grows_to_the_cap_and_resets() -> None:
    b = Backoff(1.0, 60.0, random.Random(7))
    ceilings = []
    for _ in range(10):
        ceilings.append(b.ceiling())
        assert 0 <= b.next_delay() <= ceilings[-1]
    assert ceilings[:7] == [1, 2, 4, 8, 16, 32, 60] and ceilings[-1] == 60
    b.attempt = 10_000  # forever-reconnect: no overflow, still capped
    assert b.next_delay() <= 60
    b.reset()
    assert b.ceiling() == 1


def test_enrollment_key_round_trip_and_damage() -> None:
    key = EnrollmentKey("1d3b6b1e-8a43-4f07-9b0b-6a2f6f0f2a11", "s3cret", "ab" * 32, "https://d:4443")
    assert EnrollmentKey.decode(key.encode()) == key
    with pytest.raises(ValueError, match="starts with"):
        EnrollmentKey.decode("nope")
    with pytest.raises(ValueError, match="damaged"):
        EnrollmentKey.decode(key.encode()[:-10])


def test_psk_proofs_bind_the_certificate() -> None:
    nonce, headers = psk.client_headers("k" * 20, "fp1")
    mac = dict(headers)[psk.MAC_HEADER]
    assert psk.check_client("k" * 20, "fp1", nonce, mac)
    assert not psk.check_client("k" * 20, "fp-of-a-man-in-the-middle", nonce, mac)
    assert not psk.check_client("x" * 20, "fp1", nonce, mac)
    proof = psk.server_proof("k" * 20, "fp1", nonce)
    assert psk.check_server("k" * 20, "fp1", nonce, proof) and not psk.check_server("k" * 20, "fp1", "n2", proof)


def test_attempt_limiter_counts_before_the_work() -> None:
    now = [0.0]
    rl = AttemptLimiter(window=60, clock=lambda: now[0])
    # Parallel attempts: each is counted as it begins, so exactly ``limit`` get through.
    assert [rl.begin("10.0.0.1", 3) == 0 for _ in range(10)] == [True] * 3 + [False] * 7
    assert rl.begin("10.0.0.2", 3) == 0
    rl.succeeded("10.0.0.2")  # a success is taken back out of the count
    assert [rl.begin("10.0.0.2", 3) == 0 for _ in range(4)] == [True, True, True, False]
    now[0] = 61.0  # the window slides
    assert rl.begin("10.0.0.1", 3) == 0


def test_targets() -> None:
    assert split_target("Files.Example:445") == ("files.example", 445)
    assert split_target("[::1]:22") == ("::1", 22)
    for bad in ("nohost", "h:0", "h:99999", ":80", "h:x"):
        with pytest.raises(ValueError):
            split_target(bad)


def test_director_config_sources(tmp_path: Path) -> None:
    cfg_file = tmp_path / "d.toml"
    cfg_file.write_text('state_dir = "/srv/d"\nserver_names = ["d.example"]\nsetup_port = 8443\n')
    cfg = load_config(
        ["--config", str(cfg_file), "--setup-port", "9443"], {"TENANTRY_DIRECTOR_LISTEN_HOST": "127.0.0.1"}
    )
    assert (cfg.state_dir, cfg.setup_port, cfg.listen_host, cfg.server_names) == (
        Path("/srv/d"),
        9443,
        "127.0.0.1",
        ["d.example"],
    )
    cfg_file.write_text("setup_port = 'many'\n")
    with pytest.raises(ConfigError, match="setup_port"):
        load_config(["--config", str(cfg_file)], {})
    cfg_file.write_text("not toml [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(["--config", str(cfg_file)], {})
    cfg_file.write_text("unknown_key = 1\n")
    with pytest.raises(ConfigError, match="unknown_key"):
        load_config(["--config", str(cfg_file)], {})


def test_clis_exit_non_zero_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert director_main.main(["--setup-port", "99999", "--state-dir", str(tmp_path)]) == 2
    assert "setup_port" in capsys.readouterr().err
    assert transporter_main.main(["run", "--state-dir", str(tmp_path / "none")]) == 2
    assert "not enrolled" in capsys.readouterr().err
    assert transporter_main.main(["enroll", "--state-dir", str(tmp_path), "--enrollment-key", "garbage"]) == 2
    assert "starts with" in capsys.readouterr().err
    _cmd, cfg, _args = load_transporter_config(["run", "--allow", "Host.Example:445", "--direct-connect"], {})
    assert cfg.allow == ["host.example:445"] and cfg.direct_connect.enabled and cfg.direct_connect.port == 9446


def test_init_only_creates_the_ca_and_token_once_and_exits(tmp_path: Path) -> None:
    """``--init-only`` (the director role's first Director of several): files made, nothing started."""
    state = tmp_path / "state"
    argv = ["--state-dir", str(state), "--server-name", "director-1", "--init-only"]
    assert director_main.main(argv) == 0
    made = {p.name: p.read_bytes() for p in state.iterdir()}
    assert {"ca.crt", "ca.key", "admin.token"} <= set(made)
    assert (state / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (state / "admin.token").stat().st_mode & 0o777 == 0o600
    assert director_main.main(argv) == 0  # a second run keeps what is there
    assert {p.name: p.read_bytes() for p in state.iterdir()} == made
    (state / "admin.token").write_text("short\n")
    assert director_main.main(argv) == 1
