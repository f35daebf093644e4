"""Console cleaning: escapes out, CR folded, UTF-8 repaired, independent of chunking."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from pytest_baremetal.console.clean import Cleaner, clean

# What OVMF really sends before an application's first line (QEMU, -serial socket).
OVMF_PROLOGUE = b"\x1b[=3h\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H"
OVMF_BOOT = (
    OVMF_PROLOGUE + b'BdsDxe: loading Boot0001 "UEFI QEMU HARDDISK QM00001 " from '
    b"PciRoot(0x0)/Pci(0x1,0x1)/Ata(Primary,Master,0x0)\r\n"
    b'BdsDxe: starting Boot0001 "UEFI QEMU HARDDISK QM00001 " from '
    b"PciRoot(0x0)/Pci(0x1,0x1)/Ata(Primary,Master,0x0)\r\n"
    b"\x1b[0m\x1b[37m\x1b[40m\x1b[?25l"
    b"[boot] name=bm-ref-guest version=0.1.0 build=3f2a9c1-20250101 platform=uefi "
    b'fw_vendor="EDK II" fw_revision=0x10000 uefi=2.70\r\r\n'
    b'[cfg] mode=script prompt="Once upon a time"\r\r\n'
)
OVMF_BOOT_CLEAN = (
    'BdsDxe: loading Boot0001 "UEFI QEMU HARDDISK QM00001 " from '
    "PciRoot(0x0)/Pci(0x1,0x1)/Ata(Primary,Master,0x0)\n"
    'BdsDxe: starting Boot0001 "UEFI QEMU HARDDISK QM00001 " from '
    "PciRoot(0x0)/Pci(0x1,0x1)/Ata(Primary,Master,0x0)\n"
    "[boot] name=bm-ref-guest version=0.1.0 build=3f2a9c1-20250101 platform=uefi "
    'fw_vendor="EDK II" fw_revision=0x10000 uefi=2.70\n'
    '[cfg] mode=script prompt="Once upon a time"\n'
)


def feed_in_chunks(data: bytes, cuts: list[int]) -> str:
    cleaner = Cleaner()
    bounds = sorted({min(max(c, 0), len(data)) for c in cuts})
    out, start = [], 0
    for end in [*bounds, len(data)]:
        out.append(cleaner.feed(data[start:end]))
        start = end
    out.append(cleaner.flush())
    return "".join(out)


def test_ovmf_boot_is_cleaned() -> None:
    assert clean(OVMF_BOOT) == OVMF_BOOT_CLEAN


def test_ovmf_boot_byte_by_byte() -> None:
    cleaner = Cleaner()
    out = "".join(cleaner.feed(OVMF_BOOT[i : i + 1]) for i in range(len(OVMF_BOOT)))
    assert out + cleaner.flush() == OVMF_BOOT_CLEAN


def test_escape_forms() -> None:
    cases = {
        b"a\x1b[=3hb": "ab",  # CSI with a private '=' parameter
        b"a\x1b[?25lb": "ab",
        b"a\x1b[2Jb": "ab",
        b"a\x1b[01;01Hb": "ab",
        b"a\x1b[38;5;196mb": "ab",
        b"a\x1b[1 qb": "ab",  # intermediate byte
        b"a\x1b]0;title\x07b": "ab",  # OSC ended by BEL
        b"a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b": "alinkb",  # OSC ended by ST
        b"a\x1bPq#0;2;0;0;0\x1b\\b": "ab",  # DCS
        b"a\x1b(Bb": "ab",  # charset designation
        b"a\x1b#8b": "ab",
        b"a\x1b7b\x1b8c": "abc",  # 2-byte sequences
        b"a\x1bcb": "ab",
        b"a\x1b\x1b[0mb": "ab",
    }
    for raw, want in cases.items():
        assert clean(raw) == want, raw


def test_line_endings_and_controls() -> None:
    assert clean(b"a\r\r\nb\r\nc\nd") == "a\nb\nc\nd"
    assert clean(b"50%\r60%\rdone\r\n") == "50%\n60%\ndone\n"  # a bare CR ends a line
    assert clean(b"a\x00b\x08c\x7fd\te\x07f") == "abcd\tef"
    assert clean("x\u0085y\u009bz".encode()) == "xyz"  # C1 controls as code points


def test_control_inside_escape_aborts_it() -> None:
    # an unterminated OSC ends at the newline instead of eating the console
    assert clean(b"\x1b]0;broken\nnext line\n") == "\nnext line\n"
    assert clean(b"a\x1b[12\nb") == "a\nb"
    assert clean(b"a\x1b\nb") == "a\nb"


def test_utf8_is_joined_across_chunks_and_repaired() -> None:
    text = "Élodie a mangé 🍰\n".encode()
    cleaner = Cleaner()
    out = "".join(cleaner.feed(text[i : i + 1]) for i in range(len(text)))
    assert out == "Élodie a mangé 🍰\n"
    assert clean(b"bad \xff\xfe byte\n") == "bad \ufffd\ufffd byte\n"
    assert clean(b"cut \xe2\x82") == "cut \ufffd"  # flush repairs a dangling prefix
    # an escape between the bytes of a character does not break it
    assert clean(b"caf\xc3\x1b[0m\xa9") == "café"


def test_incomplete_escape_waits_for_the_next_chunk() -> None:
    cleaner = Cleaner()
    assert cleaner.feed(b"ab\x1b[") == "ab"
    assert cleaner.feed(b"=3") == ""
    assert cleaner.feed(b"hcd") == "cd"


chunks = st.lists(st.integers(min_value=0, max_value=400), max_size=12)
escapey = st.lists(
    st.sampled_from(
        [
            b"\x1b",
            b"[",
            b"]",
            b"=",
            b"?",
            b"3",
            b";",
            b"h",
            b"m",
            b"\x07",
            b"\\",
            b"(",
            b"B",
            b"\r",
            b"\n",
            b"\x00",
            b"P",
            b"a",
            b"\xc3",
            b"\xa9",
            b"\xf0\x9f",
            b"\x8d\xb0",
            b"\xff",
        ]
    ),
    max_size=120,
).map(b"".join)
streams = st.one_of(st.binary(max_size=400), escapey)


@given(streams, chunks)
@example(OVMF_BOOT, [3, 4, 5, 40, 41, 200])
def test_any_split_gives_the_same_text(data: bytes, cuts: list[int]) -> None:
    assert feed_in_chunks(data, cuts) == clean(data)


@given(streams, chunks)
def test_output_has_no_escape_no_cr(data: bytes, cuts: list[int]) -> None:
    out = feed_in_chunks(data, cuts)
    assert "\x1b" not in out and "\r" not in out and "\x00" not in out
    assert all(ch in "\n\t" or ord(ch) >= 0x20 for ch in out)


printable = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("\n\t"),
    max_size=300,
)


@given(printable, chunks)
def test_printable_ascii_passes_unchanged(text: str, cuts: list[int]) -> None:
    assert feed_in_chunks(text.encode(), cuts) == text


unicode_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\n\t"),
    max_size=200,
)


@given(unicode_text, chunks)
def test_unicode_text_passes_unchanged(text: str, cuts: list[int]) -> None:
    assert feed_in_chunks(text.encode(), cuts) == text


@given(st.binary(max_size=2000))
def test_garbage_never_raises(data: bytes) -> None:
    cleaner = Cleaner()
    assert isinstance(cleaner.feed(data) + cleaner.flush(), str)
