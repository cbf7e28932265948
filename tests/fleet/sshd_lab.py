"""Real OpenSSH servers on 127.0.0.1 standing for a lab of boards (the `lab` fixture of the fleet tests).

Each server has its own host key, ``authorized_keys`` and ``PATH`` (set per key with ``environment=``, which
``PermitUserEnvironment`` allows), and its own ``TMPDIR`` so a test can see the temporary folders edgeq leaves.
``good1``/``good2`` reach this venv's edgeq; ``bare`` has no edgeq on its ``PATH`` (and its ``python3`` has none);
``refuses`` accepts only another key. The client side gets its own ``HOME`` with the user key, a
``known_hosts`` holding the four host keys and an ``~/.ssh/config``. Nothing listens beyond loopback and
every server is stopped at the end.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
VENV_BIN = Path(sys.executable).parent
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
REPO_MODEL = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"


@dataclass
class Board:
    """One local sshd standing for a board."""

    name: str
    port: int
    tmp: Path  # the TMPDIR of commands run through this server
    process: subprocess.Popen

    @property
    def spec(self) -> str:
        return f"{getpass.getuser()}@127.0.0.1:{self.port}"

    def leftovers(self) -> list[Path]:
        return sorted(self.tmp.iterdir())


@dataclass
class Lab:
    boards: dict[str, Board]
    home: Path  # the client's HOME (~/.ssh/config, known_hosts, id_ed25519)
    env: dict[str, str]  # environment of the client edgeq

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        """Run the client edgeq with ``args`` (in ``env``, default the lab's client environment)."""
        return subprocess.run([str(VENV_BIN / "edgeq"), *args], capture_output=True, text=True,
                              env=env or self.env, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeq-test", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def _wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {process.stderr.read() if process.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port}")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not Path(SSHD).is_file():
        pytest.skip("sshd is not installed (apt-get install openssh-server; .ci/run installs it)")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder when run as root
    root = tmp_path_factory.mktemp("lab")
    home = root / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    user_key = _keygen(home / ".ssh" / "id_ed25519")
    other_key = _keygen(root / "other_key")
    paths = {"good1": f"{VENV_BIN}:{SYSTEM_PATH}", "good2": f"{VENV_BIN}:{SYSTEM_PATH}", "bare": SYSTEM_PATH,
             "refuses": f"{VENV_BIN}:{SYSTEM_PATH}"}
    boards: dict[str, Board] = {}
    known, config = [], []
    try:
        for name, path in paths.items():
            d = root / name
            (d / "tmp").mkdir(parents=True)
            host_key = _keygen(d / "host_key")
            port = _free_port()
            key = other_key if name == "refuses" else user_key
            (d / "authorized_keys").write_text(f'environment="PATH={path}",environment="TMPDIR={d / "tmp"}" {key}\n')
            (d / "sshd_config").write_text("\n".join([
                f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}", f"PidFile {d / 'sshd.pid'}",
                f"AuthorizedKeysFile {d / 'authorized_keys'}", "PubkeyAuthentication yes", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "PermitUserEnvironment yes", "StrictModes no", "UsePAM no",
                "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp", "LogLevel ERROR", "",
            ]))
            process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
            boards[name] = Board(name, port, d / "tmp", process)
            _wait_listening(port, process)
            known.append(f"[127.0.0.1]:{port} {host_key.split()[0]} {host_key.split()[1]}")
            config += [f"Host {name}", "  HostName 127.0.0.1", f"  Port {port}", f"  User {getpass.getuser()}", ""]
        (home / ".ssh" / "known_hosts").write_text("\n".join(known) + "\n")
        (home / ".ssh" / "config").write_text("\n".join(config))
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
        env.update(HOME=str(home), COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="3")
        yield Lab(boards, home, env)
    finally:
        for board in boards.values():
            board.process.terminate()
        for board in boards.values():
            try:
                board.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                board.process.kill()
