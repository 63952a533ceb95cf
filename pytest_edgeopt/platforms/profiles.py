"""Platform profiles: which runtime, threads, transport and device a target uses, and what the
device must look like for its numbers to count.

Built in: `host`, `pi`, `jetson-nano` and the microcontrollers `cortex-m4` (alias `mcu`), `cortex-m7`
and `esp32-s3` (platforms/mcu.py holds their board facts). Plugins add profiles through the
`pytest_edgeopt_platforms` hook; users define or override them in pyproject.toml under
`[tool.edgeopt.platforms.<name>]`, validated against `schemas/platform.schema.json`.
"""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from pytest_edgeopt.kinds import OnUnreachable, Policy, TransportKind
from pytest_edgeopt.platforms.mcu import ESP32_S3, STM32H743, STM32L4R5, McuBoard, overlay_board
from pytest_edgeopt.platforms.options import PowerSpec, SshOptions

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


@dataclass(frozen=True)
class Platform:
    """A measurement target. `arch` None means "the machine pytest runs on"."""

    name: str
    description: str
    runtime: str = "onnxruntime"
    threads: int = 1
    providers: Tuple[str, ...] = ("CPUExecutionProvider",)
    compute_unit: str = "CPU"
    runtime_device: Optional[str] = None  # a runtime's own device name (OpenVINO's CPU / GPU / NPU / AUTO)
    arch: Optional[str] = None
    transport: str = TransportKind.LOCAL  # or SSH, or the name of a transport a plugin provides
    devices: Tuple[str, ...] = ()  # ssh://user@host[:port] addresses; several make a fleet
    precisions: Optional[Tuple[str, ...]] = None  # what the target supports; None = all
    fingerprint: Dict[str, Any] = field(default_factory=dict)  # expected facts of the device
    fingerprint_policy: Policy = Policy.WARN  # a device that does not match: WARN (noted in its rows) or FAIL
    power: Optional[PowerSpec] = None  # the power meter; None = none
    ssh: SshOptions = field(default_factory=SshOptions)  # python, remote_dir, known_hosts, identity_file, ...
    on_unreachable: OnUnreachable = OnUnreachable.FAIL  # a device that cannot be reached: FAIL or SKIP its tests
    budgets: Dict[str, Any] = field(default_factory=dict)
    on_host: bool = False  # the profile's settings measured on this machine, not on its device
    mcu: Optional[McuBoard] = None  # a microcontroller: TFLM runs the model here, the board is estimated

    def __post_init__(self) -> None:
        """A profile built in Python (a plugin's, a test's) may give the tables and modes as plain
        dicts and strings: they are parsed here once, as a user profile's are in `_overlay`."""
        where = f"platform {self.name!r}"
        object.__setattr__(self, "fingerprint_policy", Policy.parse(self.fingerprint_policy, name=where))
        object.__setattr__(self, "on_unreachable", OnUnreachable.parse(self.on_unreachable, name=where))
        if isinstance(self.ssh, Mapping):
            object.__setattr__(self, "ssh", SshOptions.from_dict(self.ssh, where=where))
        if isinstance(self.power, Mapping):
            object.__setattr__(self, "power", PowerSpec.from_dict(self.power, where=where) if self.power else None)

    @property
    def target_arch(self) -> str:
        return self.arch or _platform.machine()

    @property
    def remote(self) -> bool:
        return bool(self.devices) and not self.on_host


HOST = Platform(
    name="host",
    description="the machine pytest runs on, ONNX Runtime on the CPU, 1 thread (stable timings)",
)

PI = Platform(
    name="pi",
    description="Raspberry Pi 4/5 (aarch64, 64-bit OS), LiteRT on the CPU, 4 threads",
    runtime="tflite",
    threads=4,
    arch="aarch64",
    fingerprint={"arch": "aarch64", "device_model": "Raspberry Pi", "os_bits": 64},
)

JETSON_NANO = Platform(
    name="jetson-nano",
    description="NVIDIA Jetson Nano (aarch64), ONNX Runtime with TensorRT/CUDA when present, 4 threads",
    runtime="onnxruntime",
    threads=4,
    arch="aarch64",
    compute_unit="GPU",
    providers=GPU_PROVIDERS + ("CPUExecutionProvider",),
    fingerprint={"arch": "aarch64", "device_model": "Jetson Nano"},
    power=PowerSpec(kind="jetson"),
)


def mcu_profile(name: str, board: McuBoard) -> Platform:
    """A microcontroller profile: the INT8 model runs in TFLM on this machine (outputs and arena),
    latency and energy are estimated for the board."""
    return Platform(
        name=name,
        description=f"{board.summary}; TFLM on this machine, latency and energy estimated",
        runtime="tflm",
        arch=board.arch,
        mcu=board,
    )


CORTEX_M4 = mcu_profile("cortex-m4", STM32L4R5)
CORTEX_M7 = mcu_profile("cortex-m7", STM32H743)
ESP32S3 = mcu_profile("esp32-s3", ESP32_S3)
BUILTIN = (HOST, PI, JETSON_NANO, CORTEX_M4, CORTEX_M7, ESP32S3)
ALIASES = {"mcu": "cortex-m4"}  # the comparison table's word for a microcontroller
_TUPLE_FIELDS = ("providers", "devices", "precisions")


def platform_table(profiles: Iterable[Iterable[Platform]]) -> Dict[str, Platform]:
    """Merge the hook results; the first plugin to name a platform wins (ours run last)."""
    table: Dict[str, Platform] = {}
    for group in profiles:
        for profile in group:
            table.setdefault(profile.name, profile)
    return table


def apply_user_profiles(table: Dict[str, Platform], entries: Mapping[str, Any], *, where: str) -> Dict[str, Platform]:
    """`[tool.edgeopt.platforms.<name>]` entries on top of the table: an entry named like an
    existing profile overrides its fields, `extends = "pi"` starts a new one from another."""
    merged = dict(table)
    for name, entry in entries.items():
        validate_profile(entry, where=f"{where} [tool.edgeopt.platforms.{name}]")
        base_name = entry.get("extends", name if name in merged else ALIASES.get(name, "host"))
        base_name = base_name if base_name in merged else ALIASES.get(base_name, base_name)
        if base_name not in merged:
            raise ValueError(
                f"{where} [tool.edgeopt.platforms.{name}]: extends unknown platform "
                f"{base_name!r}; choose from {', '.join(merged)}"
            )
        merged[name] = _overlay(merged[base_name], name, entry, where=f"{where} [tool.edgeopt.platforms.{name}]")
    return merged


def _overlay(base: Platform, name: str, entry: Mapping[str, Any], *, where: str) -> Platform:
    known = {f.name for f in fields(Platform)} - {"mcu"}
    values: Dict[str, Any] = {k: v for k, v in entry.items() if k in known}
    if "mcu" in entry:
        values["mcu"] = overlay_board(base.mcu, entry["mcu"], where=where)
    if "ssh" in entry:
        values["ssh"] = SshOptions.from_dict(entry["ssh"], where=where)
    if "power" in entry:
        values["power"] = PowerSpec.from_dict(entry["power"], where=where)
    for key in _TUPLE_FIELDS:
        if key in values and values[key] is not None:
            values[key] = tuple(values[key])
    if name != base.name and "description" not in values:
        values["description"] = f"{base.description} (as {name})"
    profile = replace(base, name=name, **values)
    if "device" in entry:
        device = entry["device"]
        profile = with_devices(profile, (device,) if isinstance(device, str) else tuple(device))
    return profile


def validate_profile(entry: Any, *, where: str) -> None:
    """The schema's first error as one line naming the key, e.g. `threads: 0 is less than ...`."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(platform_schema())
    errors = sorted(validator.iter_errors(entry), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        key = ".".join(str(p) for p in error.absolute_path) or "(the table)"
        raise ValueError(f"{where}: {key}: {' '.join(error.message.split())[:240]}")


def platform_schema() -> Dict[str, Any]:
    text = resources.files("pytest_edgeopt").joinpath("schemas/platform.schema.json").read_text(encoding="utf-8")
    schema: Dict[str, Any] = json.loads(text)
    return schema


def with_devices(profile: Platform, devices: Tuple[str, ...]) -> Platform:
    """--edge-device replaces the profile's devices; `local` means run here (pytest on the device)."""
    if devices == (TransportKind.LOCAL,):
        return replace(profile, devices=(), transport=TransportKind.LOCAL)
    return replace(profile, devices=devices, transport=TransportKind.SSH)
