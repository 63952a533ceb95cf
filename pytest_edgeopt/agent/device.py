"""What the agent says about the machine it ran on: fingerprint, peak memory, foreign CPU load."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Optional, Set, Tuple

import numpy as np

from pytest_edgeopt.agent.contract import DeviceFacts

_INTERESTING_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma", "asimd", "asimddp", "neon")


def fingerprint() -> DeviceFacts:
    """Must-match facts (arch, CPU) and informational ones (host, Python) for the judge."""
    model, flags = _cpu_model_and_flags()
    return DeviceFacts(
        arch=platform.machine(),
        cpu_model=model,
        cpu_count=os.cpu_count(),
        cpu_flags=tuple(sorted(f for f in flags if f in _INTERESTING_FLAGS)),
        device_model=_device_tree_model(),
        os=platform.platform(),
        hostname=platform.node(),
        python=platform.python_version(),
        numpy=np.__version__,
        loadavg_1m=_loadavg(),
        os_bits=struct.calcsize("P") * 8,
        governor=_governor(),
        soc_temp_c=_soc_temp_c(),
    )


def throttled() -> Optional[int]:
    """`vcgencmd get_throttled` as a number (Raspberry Pi firmware); None where there is none."""
    if shutil.which("vcgencmd") is None:
        return None
    try:
        done = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    _, _, value = done.stdout.strip().partition("=")
    try:
        return int(value, 16)
    except ValueError:
        return None


def peak_rss_mb() -> float:
    """The agent's own VmHWM: a child's ru_maxrss inherits the parent's peak at exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / (1024.0 * 1024.0)


def busy_cpu_seconds() -> Optional[float]:
    """Busy CPU time of the whole machine, for the other processes' load during the timed loop."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu_model_and_flags() -> Tuple[str, Set[str]]:
    model: str = platform.processor() or platform.machine()
    flags: Set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and value.strip():
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def _device_tree_model() -> Optional[str]:
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        return None


def _governor() -> Optional[str]:
    """`powersave` or `ondemand` stretch latencies as the clock ramps; `performance` does not."""
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return None


def _soc_temp_c() -> Optional[float]:
    try:
        return round(int(Path("/sys/class/thermal/thermal_zone0/temp").read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def _loadavg() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
