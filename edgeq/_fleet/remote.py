"""Run one edgeq command on many boards at once: upload its files, run it, fetch its output, clean up.

Each host gets its own task (at most ``parallel`` at a time) and its own time limit; one host failing
or timing out never stops the others. On each board the files go into a fresh temporary folder
(``$TMPDIR/edgeq-fleet.<random>``, by SFTP) that is removed afterwards, also when the run is interrupted
(Ctrl-C, SIGTERM) or times out: the remote edgeq is stopped first (SIGTERM), then the folder is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import secrets
import shlex
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from edgeq._fleet.hosts import Host
from edgeq._fleet.ssh import SSHSettings, asyncssh_module, connect, describe_error
from edgeq._progress import step

log = logging.getLogger(__name__)

#: what ``--remote-edgeq`` defaults to: each is tried in turn with ``--version``
DEFAULT_REMOTE_EDGEQ = ("edgeq", "python3 -m edgeq")
#: seconds allowed for stopping the remote edgeq and removing its folder
CLEANUP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Upload:
    """A local file or folder that the remote command reads; it is copied into the board's temporary folder."""

    path: Path


@dataclass(frozen=True)
class RemoteCommand:
    """An edgeq command line to run on each board.

    Args:
        args: the arguments after ``edgeq``; each :class:`Upload` is replaced by the path of its copy on the board.
        remote_edgeq: how to start edgeq on the boards; ``None`` tries :data:`DEFAULT_REMOTE_EDGEQ` in turn.
    """

    args: tuple[str | Upload, ...]
    remote_edgeq: str | None = None

    @property
    def uploads(self) -> list[Path]:
        return [a.path for a in self.args if isinstance(a, Upload)]

    def display(self) -> str:
        """The command as the user would type it (local paths), for messages."""
        return "edgeq " + " ".join(shlex.quote(str(a.path) if isinstance(a, Upload) else a) for a in self.args)


@dataclass(frozen=True)
class HostOutcome:
    """What one host returned.

    Args:
        host: the host.
        ok: the remote command ran and exited 0.
        stdout: its standard output (the JSON the caller asked for).
        error: one line saying what went wrong (``None`` when ``ok``).
        seconds: wall time spent on this host.
        remote_edgeq: the command that started edgeq on the board, and the version it reported.
    """

    host: Host
    ok: bool
    stdout: str = ""
    error: str | None = None
    seconds: float = 0.0
    remote_edgeq: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host.name, "ok": self.ok, "error": self.error, "seconds": round(self.seconds, 3),
                "remote_edgeq": self.remote_edgeq}


class _HostFailed(Exception):
    """One host's failure, with the line that explains it."""


def run_on_hosts(
    hosts: Sequence[Host], command: RemoteCommand, settings: SSHSettings, parallel: int = 8, timeout: float = 600.0,
) -> list[HostOutcome]:
    """Run ``command`` on every host, at most ``parallel`` at a time, each within ``timeout`` seconds.

    Returns:
        One :class:`HostOutcome` per host, in the order of ``hosts``.

    Raises:
        DependencyMissing: asyncssh (the ``[fleet]`` extra) is not installed.
        KeyboardInterrupt: Ctrl-C arrived; every remote folder was removed first (SIGTERM likewise re-raised).
    """
    asyncssh_module()
    received: list[int] = []
    outcomes = asyncio.run(_run_all(hosts, command, settings, parallel, timeout, received))
    if received:
        signal.raise_signal(received[0])  # the caller's handler turns it into KeyboardInterrupt / its own exit
    if outcomes is None:  # the caller ignores that signal: still stop here, without results
        raise KeyboardInterrupt
    return outcomes


async def _run_all(hosts: Sequence[Host], command: RemoteCommand, settings: SSHSettings, parallel: int,
                   timeout: float, received: list[int]) -> list[HostOutcome] | None:
    loop, main = asyncio.get_running_loop(), asyncio.current_task()
    assert main is not None
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):  # cancel the tasks so that each removes its remote folder
            try:
                previous[sig] = signal.getsignal(sig)
                loop.add_signal_handler(sig, lambda sig=sig: (received.append(sig), main.cancel()))
            except (NotImplementedError, RuntimeError):  # no signal handlers in this loop (Windows)
                previous.pop(sig, None)
    gate = asyncio.Semaphore(max(1, parallel))
    try:
        with step("boards", total=len(hosts)) as advance:
            async def one(host: Host) -> HostOutcome:
                async with gate:
                    outcome = await _run_host(host, command, settings, timeout)
                advance(1)
                return outcome

            return list(await asyncio.gather(*(one(h) for h in hosts)))
    except asyncio.CancelledError:
        if not received:
            raise
        return None
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:
                signal.signal(sig, handler)


async def _run_host(host: Host, command: RemoteCommand, settings: SSHSettings, timeout: float) -> HostOutcome:
    start = time.monotonic()
    state: dict[str, Any] = {}
    try:
        stdout = await asyncio.wait_for(_session(host, command, settings, state), timeout)
    except _HostFailed as exc:
        return HostOutcome(host, False, error=str(exc), seconds=time.monotonic() - start, remote_edgeq=state.get("edgeq"))
    except asyncio.TimeoutError:
        return HostOutcome(host, False, error=f"timed out after {timeout:g} s (raise --timeout)",
                           seconds=time.monotonic() - start, remote_edgeq=state.get("edgeq"))
    except (OSError, asyncssh_module().Error) as exc:
        return HostOutcome(host, False, error=describe_error(exc, settings), seconds=time.monotonic() - start,
                           remote_edgeq=state.get("edgeq"))
    except Exception as exc:  # noqa: BLE001 - a bug on one host must not lose the others' results
        log.exception("unexpected error on %s", host.name)
        return HostOutcome(host, False, error=f"unexpected error: {type(exc).__name__}: {exc} (this is a bug)",
                           seconds=time.monotonic() - start, remote_edgeq=state.get("edgeq"))
    return HostOutcome(host, True, stdout=stdout, seconds=time.monotonic() - start, remote_edgeq=state.get("edgeq"))


async def _session(host: Host, command: RemoteCommand, settings: SSHSettings, state: dict[str, Any]) -> str:
    try:
        conn = await connect(host, settings)
    except OSError as exc:
        raise _HostFailed(f"cannot connect: {exc.strerror or exc}") from exc
    except asyncio.TimeoutError:
        raise _HostFailed(f"cannot connect: no SSH login within {settings.connect_timeout:g} s") from None
    async with conn:
        edgeq, version = await _find_edgeq(conn, host, command.remote_edgeq)
        state["edgeq"] = f"{edgeq} ({version})"
        # named here, so that an interruption at any point below knows which folder to remove
        folder = f'"${{TMPDIR:-/tmp}}/edgeq-fleet.{secrets.token_hex(6)}"'
        finished = False
        try:
            made = await conn.run(f"sh -c {shlex.quote(f'mkdir -m 700 {folder} && cd {folder} && pwd')}", check=False)
            path = str(made.stdout).strip()
            if made.exit_status != 0 or not path.startswith("/"):
                raise _HostFailed(f"cannot create a temporary folder on the board: {_last_line(made.stderr) or 'mkdir failed'}")
            remote_args = await _upload(conn, command, path)
            line = " ".join(shlex.quote(a) for a in remote_args)
            # the shell stays the parent: when edgeq ends, however it ends, the shell removes the folder itself
            q = shlex.quote(path)
            script = (f"cd {q} || exit 1; trap 'cd /; rm -rf {q}' EXIT; trap 'kill -TERM $p 2>/dev/null' HUP INT TERM; "
                      f"{edgeq} {line} & p=$!; echo $p > .pid; wait $p; s=$?; "
                      f"while kill -0 $p 2>/dev/null; do wait $p; s=$?; done; exit $s")
            log.info("%s: %s", host.name, script)
            result = await conn.run(f"sh -c {shlex.quote(script)}", check=False)
            finished = True
        finally:
            await _cleanup(conn, folder, stop=not finished)
        if result.exit_status != 0:
            why = _last_line(result.stderr) or f"exit status {result.exit_status}"
            raise _HostFailed(f"remote '{command.display()}' failed: {why}")
        return str(result.stdout)


async def _find_edgeq(conn: Any, host: Host, remote_edgeq: str | None) -> tuple[str, str]:
    candidates = (remote_edgeq,) if remote_edgeq else DEFAULT_REMOTE_EDGEQ
    for candidate in candidates:
        probe = await conn.run(f"{candidate} --version", check=False)
        words = str(probe.stdout).split()
        if probe.exit_status == 0 and words[:1] == ["edgeq"]:
            return candidate, " ".join(words[:2])
    tried = ", ".join(f"'{c}'" for c in candidates)
    raise _HostFailed(f"edgeq not found on the board (tried {tried}): pip install edgeq on {host.name}, "
                      "or point --remote-edgeq at it")


async def _upload(conn: Any, command: RemoteCommand, folder: str) -> list[str]:
    args: list[str] = []
    async with conn.start_sftp_client() as sftp:
        for n, arg in enumerate(command.args):
            if not isinstance(arg, Upload):
                args.append(arg)
                continue
            await sftp.mkdir(posixpath.join(folder, str(n)))  # one folder per file: names stay as the user's
            target = posixpath.join(folder, str(n), arg.path.name)
            await sftp.put(str(arg.path), target, recurse=arg.path.is_dir())
            args.append(target)
    return args


async def _cleanup(conn: Any, folder: str, stop: bool) -> None:
    """Stop the remote edgeq when it may still run, then remove ``folder`` (a shell word, ``"$TMPDIR/…"``)."""
    stopping = f'kill -TERM "$(cat {folder}/.pid 2>/dev/null)" 2>/dev/null && sleep 0.5; ' if stop else ""
    script = f"{stopping}rm -rf {folder}"
    try:
        await asyncio.wait_for(conn.run(f"sh -c {shlex.quote(script)}", check=False), CLEANUP_TIMEOUT)
    except (OSError, asyncio.TimeoutError, asyncssh_module().Error) as exc:
        log.warning("could not remove the temporary folder %s on the board: %s", folder, exc)


def _last_line(text: Any) -> str:
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""
