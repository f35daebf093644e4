"""Thousands of hostile board files, profiles and option values: each one is accepted or
ends in a ConfigError naming the file/option, within 5 s; never another exception type.
Then the same through pytest itself: one usage error before collection, no INTERNALERROR."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_baremetal import safe_yaml
from pytest_baremetal.boards import load_board, with_overrides
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers.profile import load_profile
from pytest_baremetal.settings import _guest_setting, _named_files

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 5.0
PROPERTY = settings(max_examples=1000, deadline=timedelta(seconds=LIMIT),
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

BOARD_KEYS = ["kind", "accel", "cpu", "machine", "memory", "smp", "extra_args", "features",
              "timeouts", "timeouts.boot", "timeouts.run", "timeouts.firmware", "firmware",
              "fallback", "display", "description", "physical", "physical.console",
              "physical.power", "physical.boot", "physical.sim", "physical.mac",
              "physical.lock_wait", "memroy", "\u00e9", "a.b.c.d"]
PROFILE_KEYS = ["name", "events", "death", "done", "config", "generation", "description",
                "events.x", "events.x.pattern", "events.x.fields", "events.x.kv",
                "events.x.units", "config.keys", "config.file", "generation.begin"]
SCALARS = ["1", "-1", "0", "9" * 400, "9" * 5000, "9" * 400 + "G", "1e999", ".nan", ".inf",
           "-.inf", "0x1F", "0o17", "1_000", "2001-13-45", "2001-12-14", "~", "null", "true",
           "''", '""', "'\\x00'", '"\\0\\x01\\n"', '"\\u2028"', "&a [*a]", "*a", "&a x",
           "[", "{", "]", "}", "!!python/object:os.system x", "!!binary AAAA", "? x",
           "'(a+)+$'", "'['", "'(?P<n>x)(?P<n>y)'", "tcg", "max", "qemu", "physical",
           "[1, 2]", "{a: 1}", "{{{{{{{{{{", "[" * 200 + "]" * 200, "'" + "a" * 10000 + "'",
           "2G", "512M", "4096", "1.5", "-0.0", "1e-400", "\t", "|\n  text"]

scalar = st.one_of(st.sampled_from(SCALARS),
                   st.text(max_size=40).map(lambda t: repr(t)),
                   st.integers().map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr))


def nested(keys: str, value: str) -> str:
    """``a.b: v`` as nested flow mappings (``a: {b: v}``)."""
    parts = keys.split(".")
    text = value
    for part in reversed(parts[1:]):
        text = "{" + f"{part}: {text}" + "}"
    return f"{parts[0]}: {text}"


def documents(keys: list[str]) -> st.SearchStrategy[bytes]:
    lines = st.lists(st.tuples(st.sampled_from(keys), scalar).map(lambda kv: nested(*kv)),
                     max_size=8).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass"))
    noise = st.binary(max_size=300)
    prefix = st.sampled_from([b"", b"kind: qemu\n", b"kind: physical\n", b"\xef\xbb\xbf",
                              b"\xff\xfe", b"kind: qemu\naccel: tcg\ncpu: max\n"])
    return st.one_of(st.tuples(prefix, lines).map(b"".join),
                     st.tuples(prefix, noise).map(b"".join),
                     st.tuples(prefix, lines, noise).map(b"".join))


def settle(call: Any, *args: Any) -> ConfigError | None:
    """Runs ``call``: None if it succeeds, the ConfigError if it refuses; anything else fails
    the test (as does taking longer than LIMIT)."""
    start = time.monotonic()
    try:
        call(*args)
        outcome = None
    except ConfigError as error:
        outcome = error
    assert time.monotonic() - start < LIMIT
    return outcome


def load_whole_board(path: Path) -> None:
    load_board(path)  # the kind's section is parsed once, here


@PROPERTY
@given(data=documents(BOARD_KEYS))
def test_hostile_board_files(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(data)
    error = settle(load_whole_board, path)
    if error is not None:
        assert "hostile.yaml" in str(error)


@PROPERTY
@given(data=documents(PROFILE_KEYS))
def test_hostile_profiles(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "hostile-profile.yaml"
    path.write_bytes(data)
    error = settle(load_profile, path)
    if error is not None:
        assert "hostile-profile.yaml" in str(error)


@pytest.fixture(scope="module")
def tcg_board() -> Any:
    return load_board(ROOT / "boards" / "qemu-tcg.yaml")


option_text = st.one_of(st.text(max_size=60), st.sampled_from(SCALARS))


@PROPERTY
@given(key=st.one_of(st.sampled_from(BOARD_KEYS), st.text(max_size=20)), value=option_text)
def test_hostile_bm_set_values(tcg_board: Any, key: str, value: str) -> None:
    option = f"{key}={value}"
    error = settle(with_overrides, tcg_board, [option])
    if error is not None:
        assert "--bm-set" in str(error)


@PROPERTY
@given(item=st.one_of(st.text(max_size=40),
                      st.tuples(st.text(max_size=10), option_text).map("=".join)))
def test_hostile_bm_guest_values(item: str) -> None:
    error = settle(_guest_setting, item)
    if error is not None:
        assert str(error).startswith(f"--bm-guest {item!r}")
    else:
        key, value = _guest_setting(item)
        text = GuestConfig.of({key: value}, "--bm-guest").render()
        assert len(text.splitlines()) == 2, "a value broke the guest's config file"


@PROPERTY
@given(item=st.one_of(st.text(max_size=40),
                      st.tuples(st.text(max_size=20), st.text(max_size=20)).map("=".join)))
def test_hostile_bm_file_names(item: str) -> None:
    error = settle(_named_files, [item], "--bm-file", Path)
    if error is not None:
        assert str(error).startswith(f"--bm-file {item!r}")


@pytest.mark.parametrize("guest", ["steps\n=5", "steps=\x1b[2J", "steps=5\r", "Steps=5",
                                   "st eps=5", "steps=a\u2028b", "=5"])
def test_guest_option_that_would_break_the_config_file_is_refused(guest: str) -> None:
    with pytest.raises(ConfigError, match=r"^--bm-guest "):
        _guest_setting(guest)


@pytest.mark.parametrize("option", ["cpu\n=max", "cpu=max\x00", "description=a\x1b[2Jb",
                                    "extra_args=[-a, \"b\\nc\"]\r"])
def test_bm_set_with_control_characters_is_refused(tcg_board: Any, option: str) -> None:
    with pytest.raises(ConfigError, match=r"^--bm-set '.*control characters"):
        with_overrides(tcg_board, [option])


def test_control_characters_in_marker_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="control character"):
        GuestConfig.of({"prompt": "a\x00b"}, "bm_config")
    with pytest.raises(ConfigError, match="not a finite number"):
        GuestConfig.of({"temperature": float("nan")}, "bm_config")


def test_huge_integers_are_a_config_error_not_a_value_error() -> None:
    with pytest.raises(ConfigError, match=r"x\.yaml"):
        safe_yaml.loads("memory: " + "9" * 5000, "x.yaml")


USAGE_CASES = {
    "guest-newline": ["--bm-guest", "steps\n=5"],
    "guest-control": ["--bm-guest", "prompt=\x07"],
    "memory-nines": ["--bm-set", "memory=" + "9" * 400 + "G"],
    "set-alias": ["--bm-set", "memory=&a [*a]"],
    "efi-missing": ["--bm-efi", "no/such.efi"],
    "image-missing": ["--bm-image", "no/such.img"],
    "image-with-guest": ["--bm-image", "{image}", "--bm-guest", "steps=5"],
    "file-dotdot": ["--bm-efi", "{image}", "--bm-file", "../x={image}"],
    "model-dir-missing": ["--bm-model-dir", "no/such/dir"],
    "profile-missing": ["--bm-profile", "no/such/profile.yaml"],
}


@pytest.mark.parametrize("case", list(USAGE_CASES))
def test_bad_options_are_one_usage_error_before_collection(pytester: pytest.Pytester,
                                                           case: str) -> None:
    image = pytester.path / "some.img"
    image.write_bytes(b"\0" * 512)
    args = [a.replace("{image}", str(image)) for a in USAGE_CASES[case]]
    pytester.makepyfile("def test_a(dut): pass\ndef test_b(dut): pass\n")
    result = pytester.runpytest_subprocess("--target=qemu-tcg", f"--bm-boards={ROOT / 'boards'}",
                                           *args, "-p", "no:cacheprovider", timeout=60)
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "INTERNALERROR" not in text and "Traceback" not in text, text
    assert "ERROR: " in result.stderr.str() and "collected" not in text, text
    named = {"image-with-guest": "--bm-guest", "profile-missing": "profile.yaml"}
    assert named.get(case, args[-2]) in text, text
