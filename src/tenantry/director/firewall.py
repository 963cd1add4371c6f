"""Make the host firewall follow the ports the Director listens on, whoever moved them.

The Director publishes what it listens on in ``<state_dir>/ports.json`` (written atomically
at start and whenever an uplink listener opens or closes: a port change made through the role,
the ``expert_settings`` module, the REST API or the console).  The ``director`` role installs a
systemd path unit that runs this module as root when the file changes::

    python -m tenantry.director.firewall --ports-file /var/lib/tenantry-director/ports.json \\
        --backend nftables --target /etc/tenantry/ports.d/director.nft

It never writes a rule of its own: the role renders the rules once, and this only updates the
port list in them, for the backend the role chose:

* ``nftables``: the role's rules say ``tcp dport $DIRECTOR_PORTS``; the target holds that
  ``define``.  The table file is checked (``nft -c``) before ``tenantry-firewall`` reloads it,
  and the previous define is put back when the check fails.
* ``firewalld``: the ``<port>`` elements of the target service definition; then ``--reload``.
* ``ufw``: the ``ports=`` line of the target application profile; then ``ufw app update``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

NFT_DEFINE = "DIRECTOR_PORTS"
NFT_TABLE_FILE = Path("/etc/tenantry/firewall.nft")
MAX_PORTS = 8  # the setup port, and the uplink port twice while it moves: a few at most


class FirewallError(Exception):
    """Why the firewall was left as it was."""


def publish(path: Path, setup_port: int, uplink_ports: Sequence[int], peer_port: int | None = None) -> None:
    """Write the ports file atomically (the Director calls this; ``peer_port`` with several Directors)."""
    data: dict[str, object] = {"setup_port": setup_port, "uplink_ports": sorted(set(uplink_ports))}
    if peer_port:
        data["peer_port"] = peer_port
    _write_atomic(path, json.dumps(data) + "\n", mode=0o644)


def read_ports(path: Path) -> list[int]:
    """The ports in a published file, validated: integers 1..65535, at most a few."""
    try:
        data = json.loads(path.read_text())
        ports = [data["setup_port"], *data["uplink_ports"]]
        if "peer_port" in data:  # several Directors: the port they forward requests to
            ports.append(data["peer_port"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FirewallError(f"cannot read the Director's ports from {path}: {exc}") from None
    if not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports):
        raise FirewallError(f"{path}: ports must be integers from 1 to 65535, not {ports!r}")
    if len(set(ports)) > MAX_PORTS:
        raise FirewallError(f"{path}: {len(set(ports))} ports is more than a Director listens on")
    return sorted(set(ports))


# ---------------------------------------------------------------------------------------- renderers
def nft_define(ports: Sequence[int]) -> str:
    return f"define {NFT_DEFINE} = {{ {', '.join(map(str, ports))} }}\n"


def firewalld_service(text: str, ports: Sequence[int]) -> str:
    """The service definition with exactly ``ports`` as its TCP ports (everything else kept)."""
    kept = [line for line in text.splitlines() if not re.match(r'\s*<port protocol="tcp" port="\d+"/>\s*$', line)]
    try:
        end = next(i for i, line in enumerate(kept) if line.strip() == "</service>")
    except StopIteration:
        raise FirewallError("the firewalld service definition has no </service>") from None
    lines = [f'  <port protocol="tcp" port="{p}"/>' for p in ports]
    return "\n".join([*kept[:end], *lines, *kept[end:]]) + "\n"


def ufw_profile(text: str, ports: Sequence[int]) -> str:
    """The application profile with its ``ports=`` line set to ``ports``."""
    new, count = re.subn(r"(?m)^ports=.*$", f"ports={','.join(map(str, ports))}/tcp", text)
    if count != 1:
        raise FirewallError("the ufw application profile has no single ports= line")
    return new


# ---------------------------------------------------------------------------------------- apply
def _write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise FirewallError(f"{' '.join(argv)} failed: {(done.stderr or done.stdout).strip()}")


def apply(backend: str, ports: Sequence[int], target: Path, run: Callable[[Sequence[str]], None] = _run) -> bool:
    """Update ``target`` for ``backend`` and reload that backend; ``False`` when nothing changed."""
    before = target.read_text() if target.exists() else None
    if backend == "nftables":
        after = nft_define(ports)
    elif before is None:
        raise FirewallError(f"{target} does not exist: run the director role first")
    elif backend == "firewalld":
        after = firewalld_service(before, ports)
    elif backend == "ufw":
        after = ufw_profile(before, ports)
    else:
        raise FirewallError(f"unknown backend {backend!r}; allowed: nftables, firewalld, ufw")
    if after == before:
        return False
    _write_atomic(target, after, mode=0o644)
    try:
        if backend == "nftables":
            run(["nft", "-c", "-f", str(NFT_TABLE_FILE)])
            run(["systemctl", "reload", "tenantry-firewall.service"])
        elif backend == "firewalld":
            run(["firewall-cmd", "--reload"])
        else:
            run(["ufw", "app", "update", target.name])
    except FirewallError:
        if before is not None:
            _write_atomic(target, before, mode=0o644)
        else:
            target.unlink(missing_ok=True)
        raise
    return True


def follow(ports_file: Path, apply_ports: Callable[[list[int]], bool], rounds: int = 5) -> tuple[list[int], bool]:
    """Apply the published ports until the file still says what was applied.

    The path unit starts this service when the file changes; a change made while the service runs (the
    Director opens a new uplink port, then closes the old one a moment later) starts nothing, so the
    file is read again after each apply and applied again when it moved meanwhile.
    """
    applied: list[int] | None = None
    changed = False
    for _ in range(rounds):
        ports = read_ports(ports_file)
        if ports == applied:
            break
        changed = apply_ports(ports) or changed
        applied = ports
    assert applied is not None
    return applied, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tenantry.director.firewall", description=__doc__.splitlines()[0])
    parser.add_argument("--ports-file", type=Path, required=True)
    parser.add_argument("--backend", choices=["nftables", "firewalld", "ufw"], required=True)
    parser.add_argument("--target", type=Path, required=True, help="the define file, service definition or profile")
    args = parser.parse_args(argv)
    try:
        ports, changed = follow(args.ports_file, lambda wanted: apply(args.backend, wanted, args.target))
    except FirewallError as exc:
        print(f"tenantry firewall: {exc}; the firewall was left as it was", file=sys.stderr)
        return 1
    print(f"tenantry firewall: {'opened' if changed else 'already open'}: {', '.join(map(str, ports))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
