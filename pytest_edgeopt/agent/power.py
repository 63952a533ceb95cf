"""Power meters for the agent: how many watts (and millijoules per inference) a model costs.

Stdlib only and Python 3.9 compatible, because this file is copied onto edge devices next to the
agent and must not grow the dependency set of a Jetson or a Raspberry Pi.

Every meter answers the same two questions, `track()` (measure while a block runs) and `energy()`
(what the last block drew), so `measure` can subtract an idle baseline taken with the same meter:
the board's idle draw is most of the total on small devices, and the inference's share is what a
model change moves.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from statistics import fmean
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterator,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
)

from pytest_edgeopt.runtimes.causes import first_line


class MeterKind(str, Enum):
    """The built-in meters; a plugin's meter is named by its own PowerMeterSpec.kind."""

    NONE = "none"
    RAPL = "rapl"
    JETSON = "jetson"
    PI5_PMIC = "pi5-pmic"
    COMMAND = "command"
    ESTIMATE = "estimate"

    def __str__(self) -> str:
        return str(self.value)


KINDS = tuple(kind.value for kind in MeterKind)
SPEC_KEYS = ("kind", "root", "interval_s", "command", "watts", "idle_s", "options", "module", "factory")
DEFAULT_INTERVAL_S = 0.05
PI5_COMMAND = ("vcgencmd", "pmic_read_adc")
PI5_TIMEOUT_S = 2.0
OTHER_METER = "or choose another power meter"


@dataclass(frozen=True)
class PowerMeterSpec:
    """A meter another plugin adds (the `pytest_edgeopt_power_meters` hook): `factory` in `module`
    is called in the agent with the profile's power table and returns a PowerMeter."""

    kind: str
    module: str
    factory: str


class PowerMeterError(Exception):
    """A meter that cannot measure: the message is one line that names the fix.

    Whitespace (newlines from a command's stderr included) is collapsed here, so every raise site
    gets the one-line guarantee the host's report relies on.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class PowerReading:
    source: str  # "rapl", "jetson (VDD_IN)", "pi5-pmic", "command", "estimate"
    average_w: float  # mean power while tracked (total, idle included)
    idle_w: float  # mean power measured idle before the loop (0.0 when not measured / estimate)
    seconds: float  # tracked wall time
    samples: int  # power samples (RAPL: 2 counter reads)
    estimated: bool  # True only for kind "estimate"

    @property
    def active_w(self) -> float:
        """The power the inference added: idle draw is the board's, not the model's."""
        return max(self.average_w - self.idle_w, 0.0)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-safe, with active_w spelled out so readers of the result need no arithmetic."""
        return {
            "source": self.source,
            "average_w": float(self.average_w),
            "idle_w": float(self.idle_w),
            "active_w": float(self.active_w),
            "seconds": float(self.seconds),
            "samples": int(self.samples),
            "estimated": bool(self.estimated),
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PowerReading":
        """Inverse of to_dict; active_w is derived, so it is ignored when present."""
        try:
            return cls(
                source=str(data["source"]),
                average_w=float(data["average_w"]),
                idle_w=float(data.get("idle_w", 0.0)),
                seconds=float(data["seconds"]),
                samples=int(data["samples"]),
                estimated=bool(data.get("estimated", False)),
            )
        except KeyError as exc:
            raise PowerMeterError(
                f"power reading: missing key {exc.args[0]!r} "
                "(expected source, average_w, idle_w, seconds, samples, estimated)"
            ) from None
        except (TypeError, ValueError) as exc:
            raise PowerMeterError(
                f"power reading: malformed value ({exc}); expected numbers as written by to_dict"
            ) from None


class PowerMeter(Protocol):
    source: str

    def track(self) -> ContextManager[None]:
        """Measure while the with-block runs."""
        ...

    def energy(self) -> Optional[PowerReading]:
        """The last completed track(); None before any."""
        ...


# --------------------------------------------------------------------------------------------
# RAPL: energy counters, so two reads give the exact average with no sampling thread at all.

_RAPL_DOMAIN = re.compile(r"^intel-rapl:(\d+)$")
_RAPL_FIX = "run as root or `chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj`, " + OTHER_METER


@dataclass(frozen=True)
class _RaplDomain:
    name: str
    energy_path: Path
    max_range_uj: int


def _read_number(path: Path, label: str, fix: str) -> float:
    """sysfs values are single numbers; any failure to get one is the meter's, reported with its fix."""
    try:
        return float(path.read_text().strip())
    except OSError as exc:
        raise PowerMeterError(f"{label}: cannot read {path} ({exc.strerror or type(exc).__name__}) ({fix})") from None
    except ValueError:
        raise PowerMeterError(f"{label}: {path} does not hold a number ({fix})") from None


def _rapl_domains(root: Path) -> List[_RaplDomain]:
    """Top-level package (or psys) domains only: subzones (intel-rapl:0:0) are parts of a package
    and would double count; psys covers the whole SoC, packages included, so it wins alone."""
    base = root / "class" / "powercap"
    found: List[Tuple[int, str, Path]] = []
    for path in base.glob("intel-rapl:*"):
        match = _RAPL_DOMAIN.match(path.name)
        if not match:
            continue
        try:
            name = (path / "name").read_text().strip()
        except OSError:
            continue
        if name.startswith("package") or name.startswith("psys"):
            found.append((int(match.group(1)), name, path))
    found.sort()
    psys = [entry for entry in found if entry[1].startswith("psys")]
    chosen = psys or found
    if not chosen:
        raise PowerMeterError(f"rapl: no {base}/intel-rapl:* package domain readable ({_RAPL_FIX})")
    return [
        _RaplDomain(name, path / "energy_uj", int(_read_number(path / "max_energy_range_uj", "rapl", _RAPL_FIX)))
        for _, name, path in chosen
    ]


class RaplMeter:
    """Linux powercap energy counters (Intel, and AMD through the same driver)."""

    def __init__(self, root: Path) -> None:
        self.domains = _rapl_domains(root)
        self.source = "rapl"
        self._last: Optional[PowerReading] = None
        self._read_counters()  # since Linux 5.10 energy_uj is root-only: fail at set-up, not mid-run

    def _read_counters(self) -> List[float]:
        return [_read_number(domain.energy_path, "rapl", _RAPL_FIX) for domain in self.domains]

    def _delta_uj(self, start: Sequence[float], end: Sequence[float]) -> float:
        """Counters wrap at max_energy_range_uj (every ~minute on big packages): add the range back."""
        total = 0.0
        for domain, before, after in zip(self.domains, start, end):
            delta = after - before
            if delta < 0:
                delta += domain.max_range_uj
            total += delta
        return total

    @contextmanager
    def track(self) -> Iterator[None]:
        start_uj = self._read_counters()
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        end_uj = self._read_counters()
        joules = self._delta_uj(start_uj, end_uj) / 1e6
        average = joules / seconds if seconds > 0 else 0.0
        self._last = PowerReading(self.source, average, 0.0, seconds, 2, False)

    def energy(self) -> Optional[PowerReading]:
        return self._last


# --------------------------------------------------------------------------------------------
# Sampled meters: instantaneous power read on a background thread, averaged over the block.


class _SampledMeter:
    """Samples `_sample()` at enter, every interval_s on a daemon thread, and at exit.

    The enter and exit samples give even a block shorter than one interval two samples; the
    thread sleeps on an Event between samples so it neither holds the GIL nor delays the stop.
    A sample that fails on the thread is kept and raised when the block exits, so a meter that
    died mid-run cannot report a partial average as if it were whole.
    """

    source: str = "sampled"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: Optional[PowerReading] = None

    def _sample(self) -> float:
        raise NotImplementedError

    def _sample_until(self, stop: threading.Event, samples: List[float], failures: List[BaseException]) -> None:
        while not stop.wait(self.interval_s):
            try:
                samples.append(self._sample())
            except Exception as exc:  # surfaced by track() on exit, never swallowed
                failures.append(exc)
                return

    def _as_error(self, exc: BaseException) -> PowerMeterError:
        if isinstance(exc, PowerMeterError):
            return exc
        return PowerMeterError(f"{self.source}: sampling failed ({type(exc).__name__}: {exc}); {OTHER_METER}")

    @contextmanager
    def track(self) -> Iterator[None]:
        samples = [self._sample()]
        failures: List[BaseException] = []
        stop = threading.Event()
        thread = threading.Thread(
            target=self._sample_until, args=(stop, samples, failures), name="edgeopt-power-sampler", daemon=True
        )
        start = time.perf_counter()
        thread.start()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            stop.set()
            thread.join()
        if failures:
            error = self._as_error(failures[0])
            raise error from (None if error is failures[0] else failures[0])
        samples.append(self._sample())
        self._last = PowerReading(self.source, fmean(samples), 0.0, seconds, len(samples), False)

    def energy(self) -> Optional[PowerReading]:
        return self._last


# Jetson: INA3221 monitors on the board's input and main rails.

_JETSON_FIX = f"is this a Jetson? {OTHER_METER}"


@dataclass(frozen=True)
class _Rail:
    name: str
    files: Tuple[Path, ...]  # values multiplied together, then by scale, give watts
    scale: float


def _legacy_rails(base: Path) -> List[_Rail]:
    """JetPack 4 (Nano, TX2): iio devices with rail_name_<i> and in_power<i>_input in mW."""
    rails = []
    for label_path in sorted(base.glob("*/iio:device*/rail_name_*")):
        index = label_path.name[len("rail_name_") :]
        power = label_path.parent / f"in_power{index}_input"
        name = _read_label(label_path)
        if name and power.exists():
            rails.append(_Rail(name, (power,), 1e-3))
    return rails


def _hwmon_rails(base: Path) -> List[_Rail]:
    """JetPack 5+: hwmon channels with in<i>_label, in<i>_input (mV) and curr<i>_input (mA).

    The "sum of shunt voltages" channel has no power of its own; unlabelled channels are unused.
    """
    rails = []
    for label_path in sorted(base.glob("*/hwmon/hwmon*/in*_label")):
        match = re.match(r"^in(\d+)_label$", label_path.name)
        name = _read_label(label_path)
        if not match or not name or name.lower().startswith("sum of shunt"):
            continue
        volts = label_path.parent / f"in{match.group(1)}_input"
        amps = label_path.parent / f"curr{match.group(1)}_input"
        if volts.exists() and amps.exists():
            rails.append(_Rail(name, (volts, amps), 1e-6))
    return rails


def _read_label(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _is_input_rail(name: str) -> bool:
    """POM_5V_IN / VDD_IN measure the whole board; the other rails are parts of it."""
    return "IN" in name.upper().split("_")


class JetsonMeter(_SampledMeter):
    """The board's total input rail when there is one (its sub-rails would double count), else
    the sum of all rails (e.g. AGX Xavier, which has no input monitor)."""

    def __init__(self, root: Path, interval_s: float) -> None:
        super().__init__(interval_s)
        drivers = root / "bus" / "i2c" / "drivers"
        rails = _legacy_rails(drivers / "ina3221x") + _hwmon_rails(drivers / "ina3221")
        if not rails:
            raise PowerMeterError(f"jetson: no INA3221 rails under {drivers}/ina3221x or ina3221 ({_JETSON_FIX})")
        self.rails = [rail for rail in rails if _is_input_rail(rail.name)] or rails
        self.source = f"jetson ({'+'.join(rail.name for rail in self.rails)})"
        self._sample()  # unreadable rails fail at set-up, not after the model has loaded

    def _sample(self) -> float:
        total = 0.0
        for rail in self.rails:
            value = rail.scale
            for path in rail.files:
                value *= _read_number(path, "jetson", _JETSON_FIX)
            total += value
        return total


# Commands: the Pi 5 PMIC ADC through vcgencmd, or any user command that prints watts.


def _run(label: str, argv: Sequence[str], timeout: float, not_found: str) -> str:
    """Run without a shell (argv is the user's, never re-parsed) and return stdout; every failure
    becomes a one-line PowerMeterError quoting the command and what it said."""
    shown = shlex.join(argv)
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise PowerMeterError(not_found) from None
    except PermissionError:
        raise PowerMeterError(f"{label}: `{shown}` is not executable (`chmod +x {argv[0]}`, {OTHER_METER})") from None
    except subprocess.TimeoutExpired:
        raise PowerMeterError(
            f"{label}: `{shown}` took longer than {timeout:g} s (make it faster, {OTHER_METER})"
        ) from None
    if done.returncode != 0:
        said = first_line(done.stderr) or first_line(done.stdout) or "no output"
        raise PowerMeterError(f"{label}: `{shown}` exited {done.returncode}: {said!r} (fix the command, {OTHER_METER})")
    return done.stdout


_PMIC_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-+0-9.eE]+)[AV]\s*$")


def parse_pmic(text: str) -> Dict[str, float]:
    """Watts per rail from `vcgencmd pmic_read_adc`: rails reported with both a current and a
    voltage. EXT5V_V and BATT_V are voltages only (no current), so they drop out here."""
    amps: Dict[str, float] = {}
    volts: Dict[str, float] = {}
    for line in text.splitlines():
        match = _PMIC_LINE.match(line)
        if not match:
            continue
        rail, unit, value = match.groups()
        try:
            (amps if unit == "A" else volts)[rail] = float(value)
        except ValueError:
            continue
    return {rail: volts[rail] * amps[rail] for rail in amps if rail in volts}


class Pi5PmicMeter(_SampledMeter):
    """Raspberry Pi 5: the PMIC's own rail ADCs. The sum covers the SoC, memory and I/O rails the
    PMIC feeds (not USB peripherals or conversion losses), which is where inference power goes."""

    source = "pi5-pmic"

    def __init__(self, command: Sequence[str], interval_s: float) -> None:
        super().__init__(interval_s)
        self.command = list(command)
        self._not_found = f"pi5-pmic: {self.command[0]} not found (Raspberry Pi 5 firmware tools; {OTHER_METER})"
        if shutil.which(self.command[0]) is None:
            raise PowerMeterError(self._not_found)

    def _sample(self) -> float:
        out = _run(self.source, self.command, PI5_TIMEOUT_S, self._not_found)
        rails = parse_pmic(out)
        if not rails:
            raise PowerMeterError(
                f"pi5-pmic: `{shlex.join(self.command)}` printed no rail current/voltage pairs "
                f"(got {first_line(out) or 'no output'!r}; firmware too old? `sudo apt full-upgrade` "
                f"and `sudo rpi-eeprom-update -a`, {OTHER_METER})"
            )
        return sum(rails.values())


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


class CommandMeter(_SampledMeter):
    """Any external meter (a USB power monitor's CLI, a smart plug's API) that prints watts."""

    source = "command"

    def __init__(self, command: Sequence[str], interval_s: float) -> None:
        super().__init__(interval_s)
        self.command = list(command)
        self.timeout_s = max(2.0, 10 * interval_s)  # a slow meter is tolerated, a hung one is not
        self._not_found = (
            f"command: `{shlex.join(self.command)}` not found ({self.command[0]} is not an executable "
            f"on PATH; fix the command, {OTHER_METER})"
        )
        if shutil.which(self.command[0]) is None:
            raise PowerMeterError(self._not_found)

    def _sample(self) -> float:
        out = _run(self.source, self.command, self.timeout_s, self._not_found)
        match = _NUMBER.search(out)
        if not match:
            raise PowerMeterError(
                f"command: `{shlex.join(self.command)}` printed no number: "
                f"{first_line(out) or 'no output'!r} (it must print watts, e.g. 4.25)"
            )
        return float(match.group(0))


class EstimateMeter:
    """A fixed wattage for devices with no meter: energy then scales with latency alone, and the
    reading says so (estimated=True) so the host labels it "est."."""

    source = "estimate"
    estimated = True  # measure() skips the idle phase: an estimate has no idle to subtract

    def __init__(self, watts: float) -> None:
        self.watts = watts
        self._last: Optional[PowerReading] = None

    @contextmanager
    def track(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self._last = PowerReading(self.source, self.watts, 0.0, time.perf_counter() - start, 0, True)

    def energy(self) -> Optional[PowerReading]:
        return self._last


# --------------------------------------------------------------------------------------------
# Construction from the job's spec, and the idle-then-run measurement.


def _number(spec: Dict[str, Any], key: str, default: Optional[float], minimum: float, strict: bool) -> float:
    value = spec.get(key, default)
    if value is None:
        raise PowerMeterError(f"power meter {spec['kind']!r}: missing key {key!r}")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (strict and value == minimum):
        bound = ">" if strict else ">="
        raise PowerMeterError(
            f"power meter {spec['kind']!r}: {key} must be a number {bound} {minimum:g}, got {value!r}"
        )
    return float(value)


def _argv(spec: Dict[str, Any], default: Optional[Sequence[str]]) -> List[str]:
    value = spec.get("command", default)
    if value is None:
        raise PowerMeterError(
            f"power meter {spec['kind']!r}: missing key 'command' (an argv list, e.g. ['my-meter', '--watts'])"
        )
    if isinstance(value, str) or not value or not all(isinstance(part, str) for part in value):
        raise PowerMeterError(
            f"power meter {spec['kind']!r}: command must be a non-empty argv list of strings (no shell), got {value!r}"
        )
    return list(value)


def make_meter(spec: Optional[Dict[str, Any]]) -> Optional[PowerMeter]:
    """spec None or {"kind": "none"} -> None. Keys: kind; root (sysfs root, default "/sys", used by
    rapl and jetson so tests point it at a temp dir); interval_s (sampling period, default 0.05);
    command (argv list, for "command" and overridable for "pi5-pmic", default
    ["vcgencmd", "pmic_read_adc"]); watts (for "estimate"); idle_s is tolerated (it is measure()'s).
    Unknown kind / key, missing key -> PowerMeterError naming the valid kinds/keys.

    Hardware is discovered here, so a device without the meter fails before any model is loaded.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise PowerMeterError(f"power meter spec must be a mapping like {{'kind': 'rapl'}}, got {spec!r}")
    unknown = sorted(str(key) for key in spec if key not in SPEC_KEYS)
    if unknown:
        raise PowerMeterError(f"power meter: unknown key(s) {', '.join(unknown)} (valid keys: {', '.join(SPEC_KEYS)})")
    kind = spec.get("kind")
    if kind is None:
        raise PowerMeterError(f"power meter: missing key 'kind' (one of {', '.join(KINDS)})")
    if kind not in KINDS and spec.get("module") and spec.get("factory"):
        return _plugin_meter(spec)
    if kind not in KINDS:
        raise PowerMeterError(f"power meter: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    return _built_in(MeterKind(kind), spec)


def _built_in(kind: MeterKind, spec: Dict[str, Any]) -> Optional[PowerMeter]:
    if kind == MeterKind.NONE:
        return None
    if kind == MeterKind.ESTIMATE:
        return EstimateMeter(_number(spec, "watts", None, 0.0, strict=False))
    interval_s = _number(spec, "interval_s", DEFAULT_INTERVAL_S, 0.0, strict=True)
    root = Path(spec.get("root") or "/sys")
    if kind == MeterKind.RAPL:
        return RaplMeter(root)
    if kind == MeterKind.JETSON:
        return JetsonMeter(root, interval_s)
    if kind == MeterKind.PI5_PMIC:
        return Pi5PmicMeter(_argv(spec, PI5_COMMAND), interval_s)
    return CommandMeter(_argv(spec, None), interval_s)


def _plugin_meter(spec: Dict[str, Any]) -> PowerMeter:
    """A meter a plugin registered: the host put its module and factory into the job."""
    from importlib import import_module

    try:
        factory = getattr(import_module(str(spec["module"])), str(spec["factory"]))
    except (ImportError, AttributeError) as error:
        raise PowerMeterError(
            f"power meter {spec['kind']!r}: cannot load {spec['module']}.{spec['factory']} "
            f"where the agent runs ({error})"
        ) from None
    meter: PowerMeter = factory(spec)
    return meter


def measure(meter: PowerMeter, run: Callable[[], Any], *, idle_s: float) -> Tuple[Any, PowerReading]:
    """Measure idle power for idle_s seconds (sleeping, nothing running) with one track(), then
    track `run()`; return run's result and a PowerReading whose idle_w is the idle average (0.0
    when idle_s == 0).

    The idle phase uses the same meter as the run, so its offsets and unmetered rails cancel out
    in active_w.
    """
    if idle_s < 0 or not math.isfinite(idle_s):
        raise PowerMeterError(f"power: idle_s must be a finite number >= 0, got {idle_s!r}")
    idle_w = 0.0
    if idle_s > 0 and not getattr(meter, "estimated", False):
        with meter.track():
            time.sleep(idle_s)
        idle = _last_reading(meter)
        idle_w = 0.0 if idle.estimated else idle.average_w
    with meter.track():
        result = run()
    return result, replace(_last_reading(meter), idle_w=idle_w)


def _last_reading(meter: PowerMeter) -> PowerReading:
    reading = meter.energy()
    if reading is None:
        raise PowerMeterError(
            f"{meter.source}: track() completed but energy() returned None (a broken meter; {OTHER_METER})"
        )
    return reading


__all__ = [
    "KINDS",
    "PowerMeter",
    "PowerMeterError",
    "PowerReading",
    "make_meter",
    "measure",
    "parse_pmic",
]
