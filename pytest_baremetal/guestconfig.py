"""The guest's configuration file: `key=value` lines (the reference guest's `run.cfg`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pytest_baremetal.errors import ConfigError

KEY = re.compile(r"^[a-z0-9_]+$")
ConfigValue = str | int | float | bool


@dataclass(frozen=True)
class GuestConfig:
    """An ordered, hashable set of settings; equal configs share one boot."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, values: Mapping[str, ConfigValue], where: str = "guest config") -> GuestConfig:
        rendered = {}
        for key, value in values.items():
            if not KEY.match(key):
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
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ConfigError(f"guest config value {text!r} must be on one line")
    if text == "" or any(c in text for c in ' "#\\=\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
