"""A real OpenSSH server on 127.0.0.1 with throw-away host and user keys: the "device" of the
ssh transport's tests. The same machine answers, so the agent runs with this interpreter."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


@dataclass
class Device:
    port: int
    user: str
    known_hosts: Path
    identity_file: Path
    remote_dir: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def profile(self, name: str = "pi", **extra: str) -> str:
        """A [tool.edgeopt.platforms.<name>] table that reaches this device with its keys."""
        lines = [f"[tool.edgeopt.platforms.{name}]"] + [f"{k} = {v}" for k, v in extra.items()]
        lines += [
            f"[tool.edgeopt.platforms.{name}.ssh]",
            f"python = {_toml(sys.executable)}",
            f"known_hosts = {_toml(str(self.known_hosts))}",
            f"identity_file = {_toml(str(self.identity_file))}",
            f"remote_dir = {_toml(str(self.remote_dir))}",
            "connect_timeout_s = 5",
        ]
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def sshd_path() -> Optional[str]:
    found = shutil.which("sshd")
    return found or next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None)


def start_sshd(directory: Path) -> Device:
    directory.mkdir(parents=True, exist_ok=True)
    host_key, user_key = directory / "host_ed25519", directory / "user_ed25519"
    for key in (host_key, user_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (directory / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text())
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(_config(directory, host_key, port))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
    with open(directory / "sshd.log", "w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sshd_path(), "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log)
    _wait_for(port, process, directory / "sshd.log")
    known_hosts = directory / "known_hosts"
    key_type, key = Path(f"{host_key}.pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    remote = directory / "device-home"
    remote.mkdir(exist_ok=True)
    return Device(
        port=port,
        user=getpass.getuser(),
        known_hosts=known_hosts,
        identity_file=user_key,
        remote_dir=remote,
        process=process,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config(directory: Path, host_key: Path, port: int) -> str:
    return "\n".join(
        [
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {directory / 'sshd.pid'}",
            f"AuthorizedKeysFile {directory / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {getpass.getuser()}",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
            "",
        ]
    )


def _wait_for(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not listen on {port}: {log.read_text()[-500:]}")


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class StallingProxy:
    """A TCP forwarder in front of a device that can go silent without closing anything: what a
    device that loses power, or a pulled cable, looks like to the host (no FIN, no RST, no answer)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.stalled = threading.Event()
        self._sockets: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self.stalled.set()

    def close(self) -> None:
        for sock in [self.listener, *self._sockets]:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            while self.stalled.is_set():  # swallow nothing, forward nothing: the link went quiet
                time.sleep(0.2)
            try:
                sink.sendall(data)
            except OSError:
                return
