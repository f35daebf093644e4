"""The guest's configuration file: `key=value` lines (the reference guest's `run.cfg`)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pytest_baremetal.errors import ConfigError

KEY = re.compile(r"[a-z0-9_]{1,64}")
#: a value must not break the file's lines (C0 controls but tab, DEL, NEL, U+2028/9)
BAD_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
ConfigValue = str | int | float | bool


@dataclass(frozen=True)
class GuestConfig:
    """An ordered, hashable set of settings; equal configs share one boot."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, values: Mapping[str, ConfigValue], where: str = "guest config") -> GuestConfig:
        rendered = {}
        for key, value in values.items():
            if not isinstance(key, str) or not KEY.fullmatch(key):
                raise ConfigError(f"{where}: key {key!r} must match [a-z0-9_]+")
            rendered[key] = render_value(value)
        return cls(tuple(sorted(rendered.items())))

    def merged(self, other: GuestConfig) -> GuestConfig:
        values = dict(self.items)
        values.update(other.items)
        return GuestConfig(tuple(sorted(values.items())))

    def as_dict(self) -> dict[str, str]:
        return dict(self.items)

    def check_keys(self, allowed: Iterable[str], where: str) -> None:
        allowed_set = set(allowed)
        unknown = [k for k, _ in self.items if k not in allowed_set]
        if unknown:
            raise ConfigError(
                f"{where}: unknown guest config key(s) {', '.join(unknown)}; "
                f"the profile allows: {', '.join(sorted(allowed_set))}"
            )

    def render(self) -> str:
        """The file's text; strings with spaces or quotes are quoted and escaped."""
        lines = ["# written by pytest-baremetal"]
        lines += [f"{key}={value}" for key, value in self.items]
        return "\n".join(lines) + "\n"

    def label(self) -> str:
        """A short, stable, readable id for logs and test ids."""
        if not self.items:
            return "default"
        text = ",".join(f"{k}={v}" for k, v in self.items)
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        return text if len(text) <= 60 else f"{text[:48]}~{digest}"


def render_value(value: ConfigValue) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"guest config value {value!r} is not a finite number")
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    bad = BAD_CHARS.search(text)
    if bad is not None:
        raise ConfigError(f"guest config value {text!r} holds the control character "
                          f"{bad.group()!r}: a value must be one line of printable text")
    if text == "" or any(c in text for c in ' "#\\=\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
