"""Several devices of one platform, shared by pytest-xdist workers.

Each worker leases one device for its whole life on its first job (an exclusive lock file it
holds until it exits), so `-n 2` with two devices measures on both at once and never puts two
latency loops on one device. With more workers than devices the extra workers share one (each
job still takes that device's own lock, so timings never overlap); the controller, which
measures nothing, leases nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO, Optional, Sequence

from pytest_edgeopt.agent.contract import Job, Result
from pytest_edgeopt.platforms.transport import Transport, slug


class FleetTransport:
    label = "fleet"

    def __init__(self, devices: Sequence[Transport], *, lock_dir: Path, worker: Optional[str] = None) -> None:
        self.devices = list(devices)
        self.lock_dir = Path(lock_dir) / "devices"
        self.worker = worker if worker is not None else os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        self._leased: Optional[Transport] = None
        self._lease: Optional[IO[str]] = None

    def run(self, job: Job, *, timeout_s: float) -> Result:
        return self.device().run(job, timeout_s=timeout_s)

    def device(self) -> Transport:
        if self._leased is None:
            self._leased = self._lease_one()
        return self._leased

    def close(self) -> None:
        for device in self.devices:
            device.close()
        if self._lease is not None:
            self._lease.close()  # closing the file releases the lock
            self._lease = None

    def _lease_one(self) -> Transport:
        start = _worker_number(self.worker) % len(self.devices)
        order = self.devices[start:] + self.devices[:start]
        for device in order:
            handle = _try_lock(self.lock_dir / f"{slug(device.label)}.lease")
            if handle is not None:
                self._lease = handle
                return device
        return order[0]  # all leased: share this worker's own device, one job at a time


def _try_lock(path: Path) -> Optional[IO[str]]:
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): no leases, the per-job device lock still holds
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _worker_number(worker: str) -> int:
    digits = re.sub(r"\D", "", worker)
    return int(digits) if digits else 0
