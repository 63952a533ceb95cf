"""A platform profile's `ssh` and `power` tables as typed values, parsed once from the profile.

The profile's schema (schemas/platform.schema.json) has already said which keys a table may hold
and of which type, naming the user's file; parsing here turns the checked table into a frozen
value, so the transport and the measurer read fields, never a dict by key. A profile a plugin
builds in Python with a plain dict is parsed the same way (Platform.__post_init__).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Dict, Mapping, Optional, Tuple

DEFAULT_PYTHON = "python3"  # the device's interpreter when the profile names none
DEFAULT_REMOTE_DIR = ".cache/pytest-edgeopt"  # under the login user's home on the device
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_KEEPALIVE_S = 10.0  # a silent link is declared dropped after 3 keepalives without an answer


@dataclass(frozen=True)
class SshOptions:
    """`[tool.edgeopt.platforms.<name>.ssh]`: how to reach a device and where its copies live."""

    python: str = DEFAULT_PYTHON
    remote_dir: str = DEFAULT_REMOTE_DIR
    known_hosts: Optional[str] = None  # None: ~/.ssh/known_hosts
    identity_file: Optional[str] = None  # None: ssh-agent, ~/.ssh/config's IdentityFile, the default keys
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    keepalive_s: float = DEFAULT_KEEPALIVE_S

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], *, where: str) -> "SshOptions":
        values = _known(cls, table, where=f"{where}: ssh")
        for name in ("connect_timeout_s", "keepalive_s"):
            if name in values:
                values[name] = _positive(values[name], where=f"{where}: ssh.{name}")
        return cls(**values)


@dataclass(frozen=True)
class PowerSpec:
    """`[tool.edgeopt.platforms.<name>.power]`: the meter the agent samples during the timed loop.

    `kind` names a built-in meter (agent/power.py KINDS) or one a plugin adds; the other fields are
    what that meter reads, absent when the profile does not set them (the agent has the defaults).
    """

    kind: str
    command: Optional[Tuple[str, ...]] = None
    interval_s: Optional[float] = None
    idle_s: Optional[float] = None
    watts: Optional[float] = None
    root: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict)  # a plugin meter's own settings

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], *, where: str) -> "PowerSpec":
        values = _known(cls, table, where=f"{where}: power")
        if not isinstance(values.get("kind"), str) or not values["kind"]:
            raise ValueError(f'{where}: power.kind: expected the meter\'s name, e.g. kind = "rapl"')
        if values.get("command") is not None:
            values["command"] = tuple(str(part) for part in values["command"])
        return cls(**values)

    def to_dict(self) -> Dict[str, object]:
        """The job's `power` table (agent/power.py make_meter): the keys the profile set, as it set them."""
        spec: Dict[str, object] = {"kind": self.kind}
        for name in ("command", "interval_s", "idle_s", "watts", "root"):
            value = getattr(self, name)
            if value is not None:
                spec[name] = list(value) if isinstance(value, tuple) else value
        if self.options:
            spec["options"] = dict(self.options)
        return spec


def _known(kind: type, table: Mapping[str, Any], *, where: str) -> Dict[str, Any]:
    """The table's keys, each a field of `kind`; another key is a one-line error naming it."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: expected a table, got {table!r}")
    names = [f.name for f in fields(kind)]
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(names)}")
    return dict(table)


def _positive(value: Any, *, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{where}: expected a number > 0, got {value!r}")
    return float(value)
