"""Power meters against sysfs-shaped temp dirs and real executables: no hardware, no mocks of I/O."""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from pytest_edgeopt.agent.power import (
    KINDS,
    PowerMeterError,
    PowerReading,
    make_meter,
    measure,
    parse_pmic,
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


# --------------------------------------------------------------------------------------- RAPL


def _rapl_domain(root: Path, zone: str, name: str, energy_uj: int, max_uj: int = 262143328850) -> Path:
    domain = root / "class" / "powercap" / zone
    _write(domain / "name", name)
    _write(domain / "energy_uj", str(energy_uj))
    _write(domain / "max_energy_range_uj", str(max_uj))
    return domain / "energy_uj"


def _rapl_run(meter: Any, updates: Dict[Path, int]) -> PowerReading:
    with meter.track():
        for path, value in updates.items():
            path.write_text(f"{value}\n")
    reading = meter.energy()
    assert reading is not None
    return reading


def test_rapl_sums_packages_and_ignores_subzones(tmp_path: Path) -> None:
    pkg0 = _rapl_domain(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    pkg1 = _rapl_domain(tmp_path, "intel-rapl:1", "package-1", 5_000_000)
    core = _rapl_domain(tmp_path, "intel-rapl:0:0", "core", 100)
    _write(tmp_path / "class" / "powercap" / "intel-rapl" / "enabled", "1")  # the control type, not a zone
    meter = make_meter({"kind": "rapl", "root": str(tmp_path)})
    assert meter is not None and meter.energy() is None
    reading = _rapl_run(meter, {pkg0: 3_500_000, pkg1: 6_000_000, core: 900_000_000})
    assert reading.source == "rapl" and reading.samples == 2 and not reading.estimated
    assert math.isclose(reading.average_w, (2_500_000 + 1_000_000) / 1e6 / reading.seconds)
    assert reading.idle_w == 0.0


def test_rapl_uses_psys_alone_when_present(tmp_path: Path) -> None:
    pkg = _rapl_domain(tmp_path, "intel-rapl:0", "package-0", 0)
    psys = _rapl_domain(tmp_path, "intel-rapl:1", "psys", 10_000)
    meter = make_meter({"kind": "rapl", "root": str(tmp_path)})
    reading = _rapl_run(meter, {pkg: 7_000_000, psys: 2_010_000})
    assert math.isclose(reading.average_w, 2_000_000 / 1e6 / reading.seconds)


def test_rapl_counter_wrap(tmp_path: Path) -> None:
    max_uj = 65_532_610
    energy = _rapl_domain(tmp_path, "intel-rapl:0", "package-0", 65_000_000, max_uj=max_uj)
    meter = make_meter({"kind": "rapl", "root": str(tmp_path)})
    reading = _rapl_run(meter, {energy: 1_000_000})
    delta = 1_000_000 - 65_000_000 + max_uj
    assert delta > 0
    assert math.isclose(reading.average_w, delta / 1e6 / reading.seconds)


def test_rapl_missing_domains_is_one_line(tmp_path: Path) -> None:
    _rapl_domain(tmp_path, "intel-rapl:0:0", "core", 1)  # a subzone alone is not a package
    with pytest.raises(PowerMeterError) as exc:
        make_meter({"kind": "rapl", "root": str(tmp_path)})
    message = _one_line(exc)
    assert "rapl:" in message and "run as root" in message and "another power meter" in message


def test_rapl_unreadable_counter_is_one_line(tmp_path: Path) -> None:
    energy = _rapl_domain(tmp_path, "intel-rapl:0", "package-0", 1)
    energy.unlink()
    energy.mkdir()  # reading it fails with an OSError even as root, where chmod 000 would not
    with pytest.raises(PowerMeterError) as exc:
        make_meter({"kind": "rapl", "root": str(tmp_path)})
    message = _one_line(exc)
    assert str(energy) in message and "chmod a+r" in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_rapl_permission_denied_is_one_line(tmp_path: Path) -> None:
    energy = _rapl_domain(tmp_path, "intel-rapl:0", "package-0", 1)
    energy.chmod(0)
    with pytest.raises(PowerMeterError) as exc:
        make_meter({"kind": "rapl", "root": str(tmp_path)})
    assert "run as root" in _one_line(exc)


def test_rapl_counter_vanishing_mid_block_raises_on_exit(tmp_path: Path) -> None:
    energy = _rapl_domain(tmp_path, "intel-rapl:0", "package-0", 1)
    meter = make_meter({"kind": "rapl", "root": str(tmp_path)})
    with pytest.raises(PowerMeterError) as exc:
        with meter.track():
            energy.unlink()
    assert str(energy) in _one_line(exc)
    assert meter.energy() is None


# ------------------------------------------------------------------------------------- Jetson


def _jetson_legacy(root: Path, rails: Dict[str, str]) -> Path:
    device = root / "bus" / "i2c" / "drivers" / "ina3221x" / "6-0040" / "iio:device0"
    for index, (name, milliwatts) in enumerate(rails.items()):
        _write(device / f"rail_name_{index}", name)
        _write(device / f"in_power{index}_input", milliwatts)
        _write(device / f"in_current{index}_input", "600")
        _write(device / f"in_voltage{index}_input", "5000")
    return device


def _jetson_hwmon(root: Path, rails: Dict[str, tuple]) -> Path:
    hwmon = root / "bus" / "i2c" / "drivers" / "ina3221" / "1-0040" / "hwmon" / "hwmon3"
    for index, (name, (millivolts, milliamps)) in enumerate(rails.items(), start=1):
        _write(hwmon / f"in{index}_label", name)
        _write(hwmon / f"in{index}_input", millivolts)
        _write(hwmon / f"curr{index}_input", milliamps)
        _write(hwmon / f"shunt{index}_resistor", "10000")
    _write(hwmon / "in7_label", "sum of shunt voltages")
    _write(hwmon / "in7_input", "12")
    _write(hwmon / "curr4_input", "999")  # an unlabelled channel is not a rail
    _write(hwmon / "in4_input", "999")
    _write(hwmon / "name", "ina3221")
    return hwmon


def _tracked(meter: Any, seconds: float = 0.0) -> PowerReading:
    with meter.track():
        time.sleep(seconds)
    reading = meter.energy()
    assert reading is not None
    return reading


def test_jetson_legacy_uses_the_input_rail_alone(tmp_path: Path) -> None:
    _jetson_legacy(tmp_path, {"POM_5V_IN": "3012", "POM_5V_GPU": "412", "POM_5V_CPU": "824"})
    meter = make_meter({"kind": "jetson", "root": str(tmp_path), "interval_s": 0.01})
    assert meter is not None and meter.source == "jetson (POM_5V_IN)"
    reading = _tracked(meter, 0.03)
    assert reading.source == "jetson (POM_5V_IN)"
    assert reading.samples >= 2 and not reading.estimated
    assert math.isclose(reading.average_w, 3.012)


def test_jetson_hwmon_uses_vdd_in(tmp_path: Path) -> None:
    _jetson_hwmon(tmp_path, {"VDD_IN": ("5072", "1180"), "VDD_CPU_GPU_CV": ("5056", "320"), "VDD_SOC": ("5064", "400")})
    meter = make_meter({"kind": "jetson", "root": str(tmp_path)})
    reading = _tracked(meter)
    assert reading.source == "jetson (VDD_IN)"
    assert reading.samples >= 2
    assert math.isclose(reading.average_w, 5072 * 1180 / 1e6)


def test_jetson_without_input_rail_sums_rails(tmp_path: Path) -> None:
    # AGX Xavier names its rails GPU/CPU/SOC/CV/VDDRQ/SYS5V: no board input monitor.
    _jetson_legacy(tmp_path, {"GPU": "1500", "CPU": "750", "SOC": "1250"})
    reading = _tracked(make_meter({"kind": "jetson", "root": str(tmp_path)}))
    assert reading.source == "jetson (GPU+CPU+SOC)"
    assert math.isclose(reading.average_w, 3.5)


def test_jetson_hwmon_without_input_rail_sums_rails(tmp_path: Path) -> None:
    _jetson_hwmon(tmp_path, {"VDD_GPU_SOC": ("5000", "1000"), "VDD_CPU_CV": ("5000", "500")})
    reading = _tracked(make_meter({"kind": "jetson", "root": str(tmp_path)}))
    assert reading.source == "jetson (VDD_GPU_SOC+VDD_CPU_CV)"
    assert math.isclose(reading.average_w, 7.5)


def test_jetson_missing_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PowerMeterError) as exc:
        make_meter({"kind": "jetson", "root": str(tmp_path)})
    message = _one_line(exc)
    assert "ina3221x" in message and "is this a Jetson?" in message


def test_jetson_rail_vanishing_mid_block_raises_on_exit(tmp_path: Path) -> None:
    device = _jetson_legacy(tmp_path, {"POM_5V_IN": "3012"})
    meter = make_meter({"kind": "jetson", "root": str(tmp_path), "interval_s": 0.005})
    with pytest.raises(PowerMeterError) as exc:
        with meter.track():
            (device / "in_power0_input").unlink()
            time.sleep(0.05)
    assert "in_power0_input" in _one_line(exc)
    assert meter.energy() is None


# ------------------------------------------------------------------------------------ Pi 5 PMIC

PMIC_OUTPUT = """\
     3V7_WL_SW_A current(0)=0.00390372A
     3V3_SYS_A current(1)=0.05174940A
     1V8_SYS_A current(2)=0.19229940A
     DDR_VDD2_A current(3)=0.02049453A
     DDR_VDDQ_A current(4)=0.00000000A
     1V1_SYS_A current(5)=0.18056040A
     0V8_SW_A current(6)=0.34056560A
     VDD_CORE_A current(7)=0.86000000A
     3V7_WL_SW_V volt(8)=3.70147700V
     3V3_SYS_V volt(9)=3.31304500V
     1V8_SYS_V volt(10)=1.80073200V
     DDR_VDD2_V volt(11)=1.11098800V
     DDR_VDDQ_V volt(12)=0.60439500V
     1V1_SYS_V volt(13)=1.10476100V
     0V8_SW_V volt(14)=0.80085960V
     VDD_CORE_V volt(15)=0.77958600V
     EXT5V_V volt(24)=5.15108000V
     BATT_V volt(25)=0.00000000V
"""

PMIC_WATTS = (
    3.70147700 * 0.00390372
    + 3.31304500 * 0.05174940
    + 1.80073200 * 0.19229940
    + 1.11098800 * 0.02049453
    + 0.60439500 * 0.0
    + 1.10476100 * 0.18056040
    + 0.80085960 * 0.34056560
    + 0.77958600 * 0.86000000
)


def _script(tmp_path: Path, name: str, body: str) -> Path:
    """A real executable (shebang + exec bit), as vcgencmd or a user's meter would be."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def test_parse_pmic_pairs_rails_and_ignores_voltage_only() -> None:
    rails = parse_pmic(PMIC_OUTPUT)
    assert "EXT5V" not in rails and "BATT" not in rails
    assert set(rails) == {"3V7_WL_SW", "3V3_SYS", "1V8_SYS", "DDR_VDD2", "DDR_VDDQ", "1V1_SYS", "0V8_SW", "VDD_CORE"}
    assert math.isclose(rails["VDD_CORE"], 0.779586 * 0.86)


def test_pi5_pmic_sums_v_times_a(tmp_path: Path) -> None:
    fake = _script(
        tmp_path, "vcgencmd", f"import sys\nassert sys.argv[1:] == ['pmic_read_adc']\nprint({PMIC_OUTPUT!r}, end='')\n"
    )
    meter = make_meter({"kind": "pi5-pmic", "command": [str(fake), "pmic_read_adc"], "interval_s": 0.02})
    assert meter is not None
    reading = _tracked(meter)
    assert reading.source == "pi5-pmic" and reading.samples >= 2
    assert math.isclose(reading.average_w, PMIC_WATTS)


def test_pi5_pmic_garbage_names_old_firmware(tmp_path: Path) -> None:
    fake = _script(tmp_path, "vcgencmd", "print('error=1 error_msg=\"Command not registered\"')\n")
    meter = make_meter({"kind": "pi5-pmic", "command": [str(fake), "pmic_read_adc"]})
    with pytest.raises(PowerMeterError) as exc:
        _tracked(meter)
    message = _one_line(exc)
    assert "firmware" in message and "Command not registered" in message


def test_pi5_pmic_without_vcgencmd(tmp_path: Path) -> None:
    with pytest.raises(PowerMeterError) as exc:
        make_meter({"kind": "pi5-pmic", "command": [str(tmp_path / "vcgencmd"), "pmic_read_adc"]})
    message = _one_line(exc)
    assert "not found" in message and "Raspberry Pi 5" in message


# ------------------------------------------------------------------------------------- command


def test_command_end_to_end_through_measure(tmp_path: Path) -> None:
    counter = tmp_path / "calls.txt"
    script = _script(
        tmp_path,
        "meter.py",
        f"with open({str(counter)!r}, 'a') as f:\n    f.write('x\\n')\nprint('4.25 W')\n",
    )
    meter = make_meter({"kind": "command", "command": [sys.executable, str(script)], "interval_s": 0.05})
    assert meter is not None

    def run() -> str:
        time.sleep(0.2)
        return "done"

    result, reading = measure(meter, run, idle_s=0.1)
    assert result == "done"
    assert reading.source == "command" and not reading.estimated
    assert reading.samples >= 2
    assert math.isclose(reading.average_w, 4.25)
    assert math.isclose(reading.idle_w, 4.25) and reading.active_w == 0.0
    calls = counter.read_text().splitlines()
    assert len(calls) >= reading.samples + 2  # the idle phase sampled too, each sample a real run


def test_command_failing_on_the_sampler_thread_raises_on_exit(tmp_path: Path) -> None:
    counter = tmp_path / "calls.txt"
    script = _script(
        tmp_path,
        "flaky.py",
        "import sys\n"
        f"with open({str(counter)!r}, 'a') as f:\n    f.write('x\\n')\n"
        f"if len(open({str(counter)!r}).read().splitlines()) > 1:\n"
        "    sys.stderr.write('sensor offline\\nsecond line\\n')\n"
        "    sys.exit(3)\n"
        "print(5.0)\n",
    )
    meter = make_meter({"kind": "command", "command": [sys.executable, str(script)], "interval_s": 0.01})
    entered = False
    with pytest.raises(PowerMeterError) as exc:
        with meter.track():
            entered = True  # the first sample succeeded; the failure comes when the block ends
            time.sleep(0.1)
    assert entered
    message = _one_line(exc)
    assert "exited 3" in message and "sensor offline" in message and "second line" not in message
    assert "flaky.py" in message
    assert meter.energy() is None


def test_command_always_failing_raises_from_track(tmp_path: Path) -> None:
    script = _script(tmp_path, "broken.py", "import sys\nsys.stderr.write('no device\\n')\nsys.exit(3)\n")
    meter = make_meter({"kind": "command", "command": [sys.executable, str(script)]})
    with pytest.raises(PowerMeterError) as exc:
        with meter.track():
            pass
    message = _one_line(exc)
    assert "exited 3" in message and "no device" in message


def test_command_without_a_number(tmp_path: Path) -> None:
    script = _script(tmp_path, "words.py", "print('power unavailable')\n")
    meter = make_meter({"kind": "command", "command": [sys.executable, str(script)]})
    with pytest.raises(PowerMeterError) as exc:
        _tracked(meter)
    assert "printed no number" in _one_line(exc) and "power unavailable" in str(exc.value)


def test_command_not_found(tmp_path: Path) -> None:
    with pytest.raises(PowerMeterError) as exc:
        make_meter({"kind": "command", "command": [str(tmp_path / "no-such-meter"), "--watts"]})
    assert "not found" in _one_line(exc)


# ------------------------------------------------------------------- estimate, none, the spec


def test_estimate_through_measure() -> None:
    meter = make_meter({"kind": "estimate", "watts": 2.5})
    assert meter is not None
    result, reading = measure(meter, lambda: 7, idle_s=0.5)  # no idle to measure: not slept
    assert result == 7
    assert reading.source == "estimate" and reading.estimated
    assert reading.average_w == 2.5 and reading.idle_w == 0.0 and reading.active_w == 2.5
    assert reading.samples == 0


@pytest.mark.parametrize("spec", [None, {"kind": "none"}])
def test_none(spec: Optional[Dict[str, Any]]) -> None:
    assert make_meter(spec) is None


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"kind": "watt-o-meter"}, "one of none, rapl, jetson, pi5-pmic, command, estimate"),
        ({"root": "/sys"}, "missing key 'kind'"),
        ({"kind": "estimate"}, "missing key 'watts'"),
        ({"kind": "command"}, "missing key 'command'"),
        ({"kind": "command", "command": "echo 4"}, "argv list"),
        ({"kind": "estimate", "watts": "3"}, "watts must be a number"),
        ({"kind": "rapl", "interval_s": 0}, "interval_s must be a number > 0"),
        ({"kind": "rapl", "intervals": 1}, "valid keys: kind, root, interval_s, command, watts"),
    ],
)
def test_bad_specs(spec: Dict[str, Any], expected: str) -> None:
    with pytest.raises(PowerMeterError) as exc:
        make_meter(spec)
    assert expected in _one_line(exc)


def test_kinds_are_the_documented_ones() -> None:
    assert KINDS == ("none", "rapl", "jetson", "pi5-pmic", "command", "estimate")


# ----------------------------------------------------------------------------- the reading


class _PhasedMeter:
    """Two fixed readings, idle then loaded, to check measure's arithmetic exactly."""

    source = "fake"

    def __init__(self, watts: List[float]) -> None:
        self.watts = list(watts)
        self.tracked = 0
        self._last: Optional[PowerReading] = None

    @contextmanager
    def track(self) -> Iterator[None]:
        yield
        self._last = PowerReading(self.source, self.watts[self.tracked], 0.0, 2.0, 40, False)
        self.tracked += 1

    def energy(self) -> Optional[PowerReading]:
        return self._last


def test_measure_subtracts_idle() -> None:
    meter = _PhasedMeter([2.0, 5.0])
    _, reading = measure(meter, lambda: None, idle_s=0.01)
    assert meter.tracked == 2
    assert reading.idle_w == 2.0 and reading.average_w == 5.0 and reading.active_w == 3.0


def test_measure_without_idle_tracks_once() -> None:
    meter = _PhasedMeter([5.0])
    _, reading = measure(meter, lambda: None, idle_s=0)
    assert meter.tracked == 1 and reading.idle_w == 0.0 and reading.active_w == 5.0


def test_active_never_negative_and_round_trip() -> None:
    reading = PowerReading("jetson (VDD_IN)", 4.0, 4.5, 1.5, 31, False)
    assert reading.active_w == 0.0
    data = json.loads(json.dumps(reading.to_dict()))
    assert data["active_w"] == 0.0
    assert PowerReading.from_dict(data) == reading
    with pytest.raises(PowerMeterError) as exc:
        PowerReading.from_dict({"source": "rapl"})
    assert "missing key" in _one_line(exc)
