"""The `ssh` transport: push the agent, the artifact and the eval inputs to a device, run the
agent there, bring its JSON result back.

paramiko, because the whole exchange is synchronous (one job at a time per device, inside a test)
and it gives SFTP, exec channels with stdin, timeouts on connect/banner/auth and known_hosts
checking in one maintained pure-Python package; asyncssh would need an event loop inside pytest's
synchronous fixtures, fabric is paramiko plus a task layer we do not use. Host keys are checked
against known_hosts (RejectPolicy: an unknown key is an error, never trusted on first use), and
the only command string sent is our interpreter path and file path, each shell-quoted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shlex
import socket
import stat
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Optional, Set, Tuple

from pytest_edgeopt._fs import companions_of, file_lock
from pytest_edgeopt.agent.contract import Failure, FailureKind, Job, Result, Success, failure
from pytest_edgeopt.platforms.bundle import agent_bundle
from pytest_edgeopt.platforms.options import SshOptions
from pytest_edgeopt.platforms.transport import parse_agent_output, plugin_modules, slug

_GRACE_S = 5.0  # the agent's own alarm fires at the timeout; give its last words time to arrive
_ADDRESS = re.compile(
    r"^ssh://(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>\d{1,5}))?/?$"
)


@dataclass(frozen=True)
class SshAddress:
    user: Optional[str]
    host: str
    port: int = 22
    explicit_port: bool = False  # ssh://host:port, as opposed to ssh's default (or ~/.ssh/config's)

    @classmethod
    def parse(cls, text: str) -> "SshAddress":
        match = _ADDRESS.match(text.strip())
        if not match or not 0 < int(match["port"] or 22) < 65536:
            raise ValueError(
                f"{text!r} is not a device address: write ssh://USER@HOST[:PORT] "
                "(e.g. ssh://pi@raspberrypi.local), or local"
            )
        return cls(
            user=match["user"],
            host=match["host"].strip("[]"),
            port=int(match["port"] or 22),
            explicit_port=match["port"] is not None,
        )

    @property
    def label(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{user}{host}:{self.port}"


class SshTransport:
    """One device. The connection is opened on the first job and kept for the session."""

    def __init__(self, address: SshAddress, *, options: SshOptions, lock_dir: Path) -> None:
        self.address, identity = _with_ssh_config(address, options.identity_file)
        self.options = replace(options, identity_file=identity)
        self.lock_path = Path(lock_dir) / "devices" / f"{slug(self.address.label)}.lock"
        self._client: Any = None
        self._remote_dir: Optional[str] = None
        self._hashes: Dict[Tuple[str, int, int], str] = {}
        self._pushed: Set[str] = set()  # remote files this session uploaded or verified by hash

    @property
    def label(self) -> str:
        return self.address.label

    def run(self, job: Job, *, timeout_s: float) -> Result:
        with file_lock(self.lock_path):  # latency cases never share a device
            result = self._run(job, timeout_s=timeout_s)
        return replace(result, device_address=self.label)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _run(self, job: Job, *, timeout_s: float) -> Result:
        """One deadline over connecting, pushing and running; a copy the device holds that no
        longer matches its hash is pushed again once."""
        deadline = time.monotonic() + timeout_s
        result = self._attempt(job, deadline=deadline, timeout_s=timeout_s)
        if isinstance(result, Failure) and result.kind == FailureKind.STALE_FILE:
            self._pushed.clear()
            result = self._attempt(job, deadline=deadline, timeout_s=timeout_s, replace_all=True)
        return result

    def _attempt(self, job: Job, *, deadline: float, timeout_s: float, replace_all: bool = False) -> Result:
        try:
            client = self._connected()
        except ConnectFailed as error:
            return failure(FailureKind.UNREACHABLE, str(error))
        try:
            remote_job, agent = self._push(client, job, deadline=deadline, replace_all=replace_all)
            result = self._execute(client, remote_job, agent, deadline=deadline, timeout_s=timeout_s)
            if isinstance(result, Failure):
                self._discard_outputs(client, remote_job.outputs_file)
            return self._fetch_outputs(client, result, remote_job, job.outputs_file, deadline=deadline)
        except LinkDropped as error:
            self.close()
            return failure(FailureKind.UNREACHABLE, str(error))
        except (ConnectionError, EOFError, socket.timeout, _paramiko().SSHException) as error:
            self.close()  # the next job reconnects
            return failure(FailureKind.UNREACHABLE, f"the connection to {self.label} broke: {_one_line(error)}")
        except ValueError as error:  # a plugin's runtime that cannot travel with the agent
            return failure(FailureKind.PUSH, f"{self.label}: {error}")
        except OSError as error:  # SFTP: a full disk, a remote_dir we may not write
            return failure(
                FailureKind.PUSH,
                f"copying the job's files to {self.label}:{self._remote_dir or self.options.remote_dir} "
                f"failed: {_one_line(error)} (check free space and ssh.remote_dir)",
            )

    # -- connecting ----------------------------------------------------------------------------

    def _connected(self) -> Any:
        if (
            self._client is not None
            and self._client.get_transport() is not None
            and self._client.get_transport().is_active()
        ):
            return self._client
        self._client = connect(self.address, self.options)
        self._client.get_transport().set_keepalive(max(1, int(self.options.keepalive_s)))
        self._remote_dir = None
        return self._client

    # -- pushing -------------------------------------------------------------------------------

    def _push(self, client: Any, job: Job, *, deadline: float, replace_all: bool) -> Tuple[Job, str]:
        """Content-named files: what the device already has is not sent again (the agent checks
        its hash before use), and a file is renamed into place only when complete, so an
        interrupted push leaves nothing half-written. A stalled link times the SFTP calls out."""
        with client.open_sftp() as sftp:
            sftp.get_channel().settimeout(self._io_timeout(deadline))
            root = self._remote_root(sftp)
            name, data = agent_bundle(plugin_modules(job))
            agent = self._put_bytes(sftp, root, name, data, replace_all=replace_all)
            artifact, inputs = Path(job.artifact), Path(job.inputs)
            remote = replace(
                job,
                artifact=self._put_file(sftp, root, artifact, replace_all=replace_all),
                inputs=self._put_file(sftp, root, inputs, replace_all=replace_all),
                artifact_sha256=self._sha(artifact),
                inputs_sha256=self._sha(inputs),
                outputs_file=f"{root}/outputs-{uuid.uuid4().hex}.npz" if job.outputs_file else None,
            )
            if job.pairing is not None:  # the other side of a paired job travels too
                other = Path(job.pairing.artifact)
                remote = replace(
                    remote,
                    pairing=replace(
                        job.pairing,
                        artifact=self._put_file(sftp, root, other, replace_all=replace_all),
                        artifact_sha256=self._sha(other),
                    ),
                )
        return remote, agent

    def _fetch_outputs(
        self, client: Any, result: Result, sent: Job, local: Optional[str], *, deadline: float
    ) -> Result:
        """The eval set's outputs come back by SFTP (compressed, as the agent wrote them), renamed
        into place when complete; the device keeps no copy (each job writes a new one). What the
        device answers is untrusted: only the file the host named is fetched (never `/dev/zero`,
        never a file of the host's to delete), and only when it is a regular file under the cap."""
        remote = result.evaluation.outputs_file if isinstance(result, Success) else None
        if not isinstance(result, Success) or remote is None or local is None:
            return result
        if remote != sent.outputs_file:
            self._discard_outputs(client, sent.outputs_file)
            return failure(
                FailureKind.MALFORMED,
                f"{self.label} named the outputs file {remote!r}, not the one this job gave it ({sent.outputs_file})",
            )
        partial = f"{local}.partial"  # (an agent killed mid-job leaves its file: _discard_outputs)
        with client.open_sftp() as sftp:
            sftp.get_channel().settimeout(self._io_timeout(deadline))
            found = sftp.stat(remote)
            cap = int(sent.max_outputs_mb * 1e6) + (1 << 20)  # compressed is at most the data plus zip headers
            if not stat.S_ISREG(found.st_mode or 0) or (found.st_size or 0) > cap:
                sftp.remove(remote)
                return failure(
                    FailureKind.MALFORMED,
                    f"{self.label}: the outputs file is {found.st_size} bytes, over the cap of "
                    f"{sent.max_outputs_mb:g} MB (raise edgeopt_max_outputs_mb)",
                )
            sftp.get(remote, partial)
            sftp.remove(remote)
        os.replace(partial, local)
        return replace(result, evaluation=replace(result.evaluation, outputs_file=local))

    def _discard_outputs(self, client: Any, remote: Optional[str]) -> None:
        """An agent that timed out or was killed may have left its outputs (or their .partial)."""
        if remote is None:
            return
        with contextlib.suppress(OSError, EOFError, socket.timeout), client.open_sftp() as sftp:
            for path in (remote, f"{remote}.partial"):
                with contextlib.suppress(OSError):
                    sftp.remove(path)

    def _remote_root(self, sftp: Any) -> str:
        if self._remote_dir is None:
            configured = self.options.remote_dir
            home = sftp.normalize(".")
            root = configured if configured.startswith("/") else str(PurePosixPath(home) / configured)
            _makedirs(sftp, root)
            _check_private(sftp, root, where=self.label)
            self._remote_dir = root
        return self._remote_dir

    def _put_file(self, sftp: Any, root: str, path: Path, *, replace_all: bool) -> str:
        """The file under its content's name; its companions (an OpenVINO IR's .bin) beside it
        under the same stem, as read_model looks for them, all named by their joint content."""
        beside = companions_of(path)
        digests = [self._sha(p) for p in (path, *beside)]
        stem = (digests[0] if not beside else hashlib.sha256("".join(digests).encode()).hexdigest())[:24]
        for companion in beside:
            remote = f"{root}/{stem}{companion.suffix}"
            self._put(sftp, remote, companion.stat().st_size, _uploader(sftp, companion), replace_all=replace_all)
        remote = f"{root}/{stem}{''.join(path.suffixes[-1:])}"
        return self._put(sftp, remote, path.stat().st_size, _uploader(sftp, path), replace_all=replace_all)

    def _put_bytes(self, sftp: Any, root: str, name: str, data: bytes, *, replace_all: bool) -> str:
        return self._put(
            sftp,
            f"{root}/{name}",
            len(data),
            lambda partial: sftp.putfo(io.BytesIO(data), partial),
            replace_all=replace_all,
        )

    def _put(self, sftp: Any, remote: str, size: int, upload: Callable[[str], object], *, replace_all: bool) -> str:
        if replace_all or _remote_size(sftp, remote) != size:
            _upload(sftp, remote, upload)
        self._pushed.add(remote)
        return remote

    def _sha(self, path: Path) -> str:
        """The file's sha256, computed once per version of the file (size and mtime)."""
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._hashes:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._hashes[key] = digest.hexdigest()
        return self._hashes[key]

    def _io_timeout(self, deadline: float) -> float:
        """An SFTP call waits at most three keepalives, and never past the job's deadline."""
        return max(0.5, min(3 * self.options.keepalive_s, deadline - time.monotonic()))

    # -- running -------------------------------------------------------------------------------

    def _execute(self, client: Any, job: Job, agent: str, *, deadline: float, timeout_s: float) -> Result:
        python = self.options.python
        command = " ".join(shlex.quote(part) for part in (python, agent))
        transport = client.get_transport()
        channel = transport.open_session(timeout=self.options.connect_timeout_s)
        remaining = max(1.0, deadline - time.monotonic())
        start = time.monotonic()
        watch = _LinkWatch(transport, every_s=self.options.keepalive_s, where=self.label)
        try:
            channel.exec_command(command)
            channel.sendall(json.dumps(replace(job, deadline_s=remaining).to_dict()).encode())
            channel.shutdown_write()
            stdout, stderr, status = _collect(channel, deadline=start + remaining + _GRACE_S, watch=watch)
        finally:
            channel.close()
        if status is None or (status == -1 and time.monotonic() - start >= remaining):  # -1: its own alarm
            return failure(
                FailureKind.TIMEOUT,
                f"the agent on {self.label} did not finish within {timeout_s:g} s (raise --edge-timeout)",
            )
        return self._interpret(stdout, stderr, status, python)

    def _interpret(self, stdout: str, stderr: str, status: int, python: str) -> Result:
        if status == 127 and not stdout.strip():
            return failure(
                FailureKind.MISSING_PYTHON,
                f"{python} was not found on {self.label}: install "
                "Python 3.9+ there, or set ssh.python in the platform profile",
            )
        result = parse_agent_output(stdout, stderr, status, where=self.label)
        if isinstance(result, Failure) and result.kind == FailureKind.AGENT_DIED and status == -1:
            return failure(
                FailureKind.AGENT_DIED, f"the agent on {self.label} was killed before it answered (no exit status)"
            )
        return result


class ConnectFailed(Exception):
    """Connecting or authenticating failed; the message says what to fix."""


class LinkDropped(Exception):
    """The device stopped answering in the middle of a job (power lost, cable pulled)."""


class _LinkWatch:
    """Whether the device still answers: a keepalive request that expects a reply, sent when the
    channel has been silent for `every_s`. paramiko's own keepalive expects none, and a link that
    drops without a FIN leaves TCP retransmitting for many minutes."""

    def __init__(self, transport: Any, *, every_s: float, where: str) -> None:
        self.transport, self.every_s, self.where = transport, every_s, where
        self._last = time.monotonic()

    def heard(self) -> None:
        self._last = time.monotonic()

    def check(self) -> None:
        if time.monotonic() - self._last < self.every_s:
            return
        answered = threading.Event()

        def ask() -> None:
            self.transport.global_request("keepalive@openssh.com", wait=True)
            answered.set()

        threading.Thread(target=ask, daemon=True).start()
        if not answered.wait(2 * self.every_s) or not self.transport.is_active():
            self.transport.close()  # ends the asking thread too
            raise LinkDropped(
                f"the link to {self.where} dropped during the job (no answer for "
                f"{3 * self.every_s:g} s); is the device on and reachable?"
            )
        self.heard()


def connect(address: SshAddress, options: SshOptions) -> Any:
    paramiko = _paramiko()
    timeout = options.connect_timeout_s
    client = paramiko.SSHClient()
    known_hosts = options.known_hosts
    try:
        if known_hosts:
            client.load_host_keys(str(Path(known_hosts).expanduser()))
        else:
            client.load_system_host_keys()
    except OSError as error:
        raise ConnectFailed(
            f"cannot read known_hosts {known_hosts or '~/.ssh/known_hosts'}: {_one_line(error)}"
        ) from None
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    identity = options.identity_file
    try:
        client.connect(
            address.host,
            port=address.port,
            username=address.user,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            key_filename=str(Path(identity).expanduser()) if identity else None,
            look_for_keys=not identity,
            allow_agent=not identity,
        )
    except Exception as error:  # every paramiko/socket failure becomes one line that says the fix
        client.close()
        raise ConnectFailed(connect_error(address, error, known_hosts=known_hosts)) from None
    return client


def _with_ssh_config(address: SshAddress, identity: Optional[str]) -> Tuple[SshAddress, Optional[str]]:
    """`Host pi` aliases in ~/.ssh/config work as they do for ssh: HostName, User, Port (when the
    address names none) and IdentityFile (when the profile names none)."""
    path = Path("~/.ssh/config").expanduser()
    if not path.is_file():
        return address, identity
    found = _paramiko().SSHConfig.from_path(str(path)).lookup(address.host)
    port = address.port if address.explicit_port else int(found.get("port", address.port))
    resolved = SshAddress(
        user=address.user or found.get("user"), host=found.get("hostname", address.host), port=port, explicit_port=True
    )
    files = found.get("identityfile") or []
    return resolved, identity or next((f for f in files if Path(f).expanduser().is_file()), None)


def connect_error(address: SshAddress, error: BaseException, *, known_hosts: Optional[str]) -> str:
    paramiko = _paramiko()
    where, port = address.label, address.port
    hosts_file = known_hosts or "~/.ssh/known_hosts"
    key_name = address.host if port == 22 else f"[{address.host}]:{port}"
    if isinstance(error, paramiko.BadHostKeyException):
        return (
            f"the host key of {where} does not match {hosts_file}: if the device was re-imaged, check "
            f"the new key and run ssh-keygen -R '{key_name}'; otherwise do not connect"
        )
    if isinstance(error, paramiko.PasswordRequiredException):
        return (
            f"the key for {where} is encrypted: add it to ssh-agent (ssh-add KEY) and leave "
            "ssh.identity_file unset, or use a key without a passphrase for CI"
        )
    if isinstance(error, paramiko.AuthenticationException):
        return (
            f"{where} refused our key (authentication failed): ssh-copy-id -p {port} "
            f"{address.user or '$USER'}@{address.host}, or set ssh.identity_file in the platform profile"
        )
    if isinstance(error, paramiko.SSHException) and "known_hosts" in str(error):
        return (
            f"the host key of {where} is not in {hosts_file}: check it and add it with "
            f"ssh-keyscan -p {port} {address.host} >> {hosts_file}"
        )
    if isinstance(error, socket.gaierror):
        return f"cannot resolve {address.host} ({_one_line(error)}): check the name in --edge-device"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"{where} did not answer within the connect timeout: is the device on and reachable?"
    if isinstance(error, (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError)):
        return f"{where} refused the connection: is sshd running there on port {port}?"
    return f"cannot connect to {where}: {_one_line(error)}"


def _collect(channel: Any, *, deadline: float, watch: _LinkWatch) -> Tuple[str, str, Optional[int]]:
    """stdout, stderr and the exit status; status None when the deadline passed first."""
    out, err = bytearray(), bytearray()
    while True:
        busy = False
        if channel.recv_ready():
            out += channel.recv(1 << 16)
            busy = True
        if channel.recv_stderr_ready():
            err += channel.recv_stderr(1 << 16)
            busy = True
        if not busy and channel.exit_status_ready():
            break
        if time.monotonic() > deadline:
            return out.decode(errors="replace"), err.decode(errors="replace"), None
        if busy:
            watch.heard()
        else:
            watch.check()
            time.sleep(0.01)
    return out.decode(errors="replace"), err.decode(errors="replace"), channel.recv_exit_status()


def _upload(sftp: Any, remote: str, upload: Callable[[str], object]) -> None:
    """Under a temporary name, readable by this user only, then renamed into place."""
    partial = _partial(remote)
    upload(partial)
    sftp.chmod(partial, 0o600)
    sftp.posix_rename(partial, remote)


def _check_private(sftp: Any, root: str, *, where: str) -> None:
    """The device's copies are code the agent runs: a remote_dir another user owns or may write
    could swap them. It is ours (a file we create there is owned by the same uid) and 0700."""
    probe = f"{root}/.owner-probe-{uuid.uuid4().hex[:8]}"
    with sftp.open(probe, "w"):
        pass
    try:
        ours = sftp.stat(probe).st_uid
    finally:
        sftp.remove(probe)
    directory = sftp.stat(root)
    if directory.st_uid != ours:
        raise OSError(
            f"{where}:{root} belongs to uid {directory.st_uid}, not to the login user (uid {ours}): "
            "set ssh.remote_dir to a directory of your own"
        )
    if directory.st_mode & 0o077:
        sftp.chmod(root, 0o700)


def _partial(remote: str) -> str:
    """Unique per upload: two sessions pushing the same file to one device must not share it."""
    return f"{remote}.{uuid.uuid4().hex[:12]}.part"


def _makedirs(sftp: Any, path: str) -> None:
    current = ""
    for part in PurePosixPath(path).parts:
        current = part if not current else str(PurePosixPath(current) / part)
        if _remote_size(sftp, current) is None:
            try:
                sftp.mkdir(current, mode=0o700)
            except OSError:
                if _remote_size(sftp, current) is None:  # not another worker's mkdir winning the race
                    raise


def _remote_size(sftp: Any, path: str) -> Optional[int]:
    try:
        size: Optional[int] = sftp.stat(path).st_size
    except OSError:
        return None
    return size


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:240] if text else type(error).__name__


def _paramiko() -> Any:
    import paramiko

    return paramiko


def _uploader(sftp: Any, path: Path) -> Callable[[str], object]:
    return lambda partial: sftp.put(str(path), partial)
