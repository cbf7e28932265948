"""Which boards to reach: ``user@host[:port]`` specs and host files (plain lists or Ansible-style INI inventories)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from edgeq.errors import UsageError

_SPEC = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]\s]+\]|[^:@\s\[\]]+)(?::(?P<port>\d+))?$")
_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]$")


@dataclass(frozen=True)
class Host:
    """One board to reach over SSH.

    Args:
        name: the host as the user gave it (``pi@pi4.local:2222``, or an inventory alias); reports carry it.
        host: the name or address to connect to (``~/.ssh/config`` may map it further).
        user: the login name; ``None``: ``~/.ssh/config`` or the local user decides.
        port: the SSH port; ``None``: ``~/.ssh/config`` or 22.
    """

    name: str
    host: str
    user: str | None = None
    port: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "host": self.host, "user": self.user, "port": self.port}


def parse_host(spec: str, source: str = "--host") -> Host:
    """Parse ``[user@]host[:port]`` (an IPv6 address goes in brackets: ``pi@[fe80::1]:22``).

    Raises:
        UsageError: ``spec`` is not of that form or the port is not 1..65535.
    """
    text = spec.strip()
    m = _SPEC.match(text)
    port = int(m["port"]) if m and m["port"] else None
    if not m or (port is not None and not 0 < port < 65536):
        raise UsageError(f"{source} expects user@host[:port] (port 1-65535). Received: {spec!r}")
    return Host(name=text, host=m["host"].strip("[]"), user=m["user"], port=port)


def read_hosts_file(path: str | Path) -> list[Host]:
    """The hosts listed in ``path``: one ``user@host[:port]`` per line, or an Ansible-style INI inventory.

    In an inventory, each host line is ``ALIAS [ansible_host=ADDR] [ansible_port=N] [ansible_user=NAME]``;
    ``[group:vars]`` sections set those variables for a group's hosts (``[all:vars]`` for every host) and
    ``[group:children]`` sections are skipped. Blank lines and ``#``/``;`` comments are ignored; a host listed
    in several groups is reached once.

    Raises:
        UsageError: the file cannot be read, a line is malformed, or it lists no host.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--hosts expects a readable text file of hosts. Received: {path} ({exc.strerror or exc})") from None
    rows = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip() and not line.strip().startswith(("#", ";"))]
    inventory = any(_SECTION.match(text) or "ansible_" in text for _, text in rows)
    hosts = _inventory(rows, path) if inventory else [parse_host(text, f"{path}:{n}") for n, text in rows]
    if not hosts:
        raise UsageError(f"--hosts file {path} lists no host; write one user@host[:port] per line")
    return hosts


def _inventory(rows: Iterable[tuple[int, str]], path: str | Path) -> list[Host]:
    members: dict[str, tuple[list[str], dict[str, str]]] = {}  # alias -> (groups, own vars)
    group_vars: dict[str, dict[str, str]] = {}
    section, kind = "ungrouped", "hosts"
    for n, text in rows:
        m = _SECTION.match(text)
        if m:
            section, _, kind = m["name"].partition(":")
            kind = kind or "hosts"
            continue
        if kind == "children":
            continue
        try:
            words = shlex.split(text, comments=True)
        except ValueError as exc:
            raise UsageError(f"{path}:{n}: cannot read {text!r} ({exc}); write ALIAS key=value ...") from None
        if kind == "vars":
            key, sep, value = text.partition("=")
            if not sep:
                raise UsageError(f"{path}:{n}: expected key=value in [{section}:vars]. Received: {text!r}")
            group_vars.setdefault(section, {})[key.strip()] = value.strip().strip("'\"")
            continue
        pairs = [w.partition("=") for w in words[1:]]
        if any(not sep for _, sep, _ in pairs):
            raise UsageError(f"{path}:{n}: expected ALIAS followed by key=value pairs. Received: {text!r}")
        groups, own = members.setdefault(words[0], ([], {}))
        groups.append(section)
        own.update({k: v for k, _, v in pairs})
    hosts = []
    for alias, (groups, own) in members.items():
        merged = dict(group_vars.get("all", {}))
        for group in groups:
            merged.update(group_vars.get(group, {}))
        merged.update(own)
        port = merged.get("ansible_port") or merged.get("ansible_ssh_port")
        if port is not None and (not port.isdigit() or not 0 < int(port) < 65536):
            raise UsageError(f"{path}: ansible_port of {alias} must be 1-65535. Received: {port!r}")
        target = merged.get("ansible_host") or merged.get("ansible_ssh_host") or alias
        user = merged.get("ansible_user") or merged.get("ansible_ssh_user")
        hosts.append(Host(name=alias, host=target, user=user, port=int(port) if port else None))
    return hosts


def gather_hosts(specs: Iterable[str] | None, files: Iterable[str] | None) -> list[Host]:
    """Every host of ``--host`` specs and ``--hosts`` files, in order, each name once.

    Raises:
        UsageError: a spec or file is malformed.
    """
    hosts = [parse_host(s) for s in specs or ()]
    for path in files or ():
        hosts += read_hosts_file(path)
    unique: dict[str, Host] = {}
    for host in hosts:
        unique.setdefault(host.name, host)
    return list(unique.values())
