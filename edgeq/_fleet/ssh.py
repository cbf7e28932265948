"""SSH connections to the boards, through asyncssh, configured like ``ssh``.

``~/.ssh/config``, the SSH agent and the default keys work as with ``ssh``; ``identity`` adds a key file.
Host keys are checked against ``~/.ssh/known_hosts``; a host with no key there is refused unless
``accept_new_host_keys`` is set, which then records its key (OpenSSH's ``StrictHostKeyChecking=accept-new``).
A host whose key *changed* is always refused.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeq.errors import DependencyMissing
from edgeq._fleet.hosts import Host

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "edgeq[fleet]"'


def asyncssh_module() -> Any:
    """The ``asyncssh`` module.

    Raises:
        DependencyMissing: the ``[fleet]`` extra is not installed.
    """
    try:
        import asyncssh
    except ImportError:
        raise DependencyMissing(f"--host/--hosts reach boards over SSH with asyncssh, which is not installed; "
                                f"run: {INSTALL_HINT}") from None
    return asyncssh


@dataclass(frozen=True)
class SSHSettings:
    """How to connect to every host.

    Args:
        identity: a private key file to offer (besides the agent's and those of ``~/.ssh/config``).
        accept_new_host_keys: trust and record the key of a host not yet in ``known_hosts``.
        connect_timeout: seconds to wait for the connection and login.
    """

    identity: str | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = 30.0


def known_hosts_path() -> Path:
    """The file host keys are checked against and new ones recorded in (``~/.ssh/known_hosts``)."""
    return Path("~", ".ssh", "known_hosts").expanduser()


def _client_class(settings: SSHSettings) -> Any:
    asyncssh = asyncssh_module()

    class Client(asyncssh.SSHClient):  # type: ignore[misc, name-defined]
        def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
            """Called only for a key that ``known_hosts`` does not trust: accept it if the host is new and allowed."""
            if not settings.accept_new_host_keys:
                return False
            path = known_hosts_path()
            if path.is_file():
                known = asyncssh.match_known_hosts(str(path), host, addr, port if port != 22 else None)
                if known[0] or known[1]:  # the host has other keys (or a CA): a changed key, never trusted
                    return False
            _record_host_key(path, host, port, key)
            return True

    return Client


def _record_host_key(path: Path, host: str, port: int, key: Any) -> None:
    name = host if port == 22 else f"[{host}]:{port}"
    kind, data = key.export_public_key("openssh").decode().split()[:2]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{name} {kind} {data}\n")
    log.info("recorded the new host key of %s in %s (--accept-new-host-keys)", name, path)


async def connect(host: Host, settings: SSHSettings) -> Any:
    """Open an SSH connection to ``host`` (an ``asyncssh.SSHClientConnection``; use it with ``async with``)."""
    asyncssh = asyncssh_module()
    options: dict[str, Any] = {"client_factory": _client_class(settings), "connect_timeout": settings.connect_timeout}
    if host.user:
        options["username"] = host.user
    if host.port:
        options["port"] = host.port
    if settings.identity:
        options["client_keys"] = [os.path.expanduser(settings.identity)]
    return await asyncssh.connect(host.host, **options)


def describe_error(exc: BaseException, settings: SSHSettings) -> str:
    """One line saying why the SSH connection or login failed, and what to do."""
    asyncssh = asyncssh_module()
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        hint = "its key changed since it was recorded, check why" if settings.accept_new_host_keys else \
            "run 'ssh HOST' once to check and record its key, or pass --accept-new-host-keys"
        return f"host key not trusted by {known_hosts_path()} ({hint})"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "permission denied: the board refused the SSH key(s) offered (check --identity, ssh-agent, authorized_keys)"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"SSH connection lost: {exc.reason}"
    if isinstance(exc, asyncssh.KeyImportError):
        return f"cannot use the SSH key: {exc}"
    if isinstance(exc, asyncssh.Error):
        return f"SSH error: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
