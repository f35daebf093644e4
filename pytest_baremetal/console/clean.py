"""Incremental console cleaning: ANSI/VT escapes out, CR folded, UTF-8 repaired.

Bytes go in chunk by chunk, text comes out; the result never depends on where the stream
was split. Escape forms removed (ECMA-48 / VT500 parser shapes):

- CSI ``ESC [`` params (``0-9:;<=>?``, so ``ESC[=3h`` and ``ESC[?25l`` too), intermediates,
  one final byte ``@-~``;
- OSC ``ESC ]`` and the DCS/SOS/PM/APC strings (``ESC P``, ``X``, ``^``, ``_``), ended by
  BEL or ST (``ESC \\``);
- other ``ESC`` sequences: intermediates (``ESC ( B``, ``ESC # 8``) then one final byte.

A control byte inside an escape aborts it and is handled as ordinary input, and a newline
ends an unterminated string, so one broken sequence never swallows the console.

Line ends: ``\\n`` and a bare ``\\r`` both end a line (progress lines redrawn with ``\\r``
are lines of their own); ``\\r\\n``, ``\\r\\r\\n`` and ``\\n\\r`` are one line end, also when
split across chunks. Every line end comes out as ``\\n``. NUL, DEL and the other C0/C1
controls except ``\\n`` and ``\\t`` are dropped. Invalid UTF-8 becomes U+FFFD.
"""

from __future__ import annotations

import codecs
import enum
import re

ESC = 0x1B
BEL = 0x07
CR, LF = 0x0D, 0x0A
_KEEP = (LF, 0x09, CR)
# bytes deleted from plain text: C0 controls except LF, CR and TAB, and DEL
_DELETE = bytes(b for b in range(0x20) if b not in _KEEP) + b"\x7f"
# C1 controls as decoded code points
_C1 = {cp: None for cp in range(0x80, 0xA0)}
_STRING_INTRODUCERS = frozenset(b"]PX^_")
# one line end: CRs with at most one LF among them, or an LF and the CRs after it
_EOL = re.compile(rb"\r+\n?\r*|\n\r*")
# state of the last line end, which the next chunk may continue
_EOL_NONE, _EOL_CR, _EOL_LF = 0, 1, 2  # _EOL_CR: may still take one LF


class _State(enum.Enum):
    GROUND = 0
    ESCAPE = 1  # after ESC
    ESCAPE_INTERMEDIATE = 2  # ESC then 0x20-0x2F bytes
    CSI = 3
    STRING = 4  # OSC/DCS/SOS/PM/APC body
    STRING_ESC = 5  # ESC seen inside a string (ST is ESC \)


class Cleaner:
    """Turns raw console bytes into clean text, one chunk at a time."""

    def __init__(self) -> None:
        self._state = _State.GROUND
        self._eol = _EOL_NONE
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, chunk: bytes) -> str:
        """Clean one chunk; partial escapes and UTF-8 sequences wait for the next one."""
        return self._decode(self._strip(chunk), final=False)

    def flush(self) -> str:
        """End of stream: a dangling UTF-8 prefix becomes U+FFFD, a dangling escape is dropped."""
        self._state = _State.GROUND
        self._eol = _EOL_NONE
        return self._decode(b"", final=True)

    def _decode(self, data: bytes, final: bool) -> str:
        return self._decoder.decode(data, final).translate(_C1)

    def _strip(self, data: bytes) -> bytes:
        out = bytearray()
        i, n = 0, len(data)
        while i < n:
            if self._state is _State.GROUND:
                j = data.find(ESC, i)
                end = n if j < 0 else j
                out += self._text(data[i:end])
                if j < 0:
                    break
                self._state = _State.ESCAPE
                i = j + 1
                continue
            byte = data[i]
            if not self._step(byte):
                continue  # byte aborted the sequence: reprocess it in GROUND
            i += 1
        return bytes(out)

    def _text(self, segment: bytes) -> bytes:
        """Plain text: controls dropped, each line end (``_EOL``) made one ``\\n``."""
        seg = segment.translate(None, _DELETE)
        if not seg:
            return seg
        i, n = 0, len(seg)
        if self._eol != _EOL_NONE:  # the previous chunk's line end may go on here
            while i < n and seg[i] == CR:
                i += 1
            if self._eol == _EOL_CR and i < n and seg[i] == LF:
                self._eol = _EOL_LF
                i += 1
                while i < n and seg[i] == CR:
                    i += 1
            if i == n:
                return b""
        rest = seg[i:]
        last = rest[-1]
        if last == LF:
            self._eol = _EOL_LF
        elif last == CR:
            body = rest.rstrip(b"\r")
            self._eol = _EOL_LF if body.endswith(b"\n") else _EOL_CR
        else:
            self._eol = _EOL_NONE
        if CR not in rest:
            return rest  # the usual case: nothing to fold
        return _EOL.sub(b"\n", rest)

    def _step(self, byte: int) -> bool:
        """Advance the escape state machine by one byte; False means "not consumed"."""
        state = self._state
        if state is _State.ESCAPE:
            if byte == ESC:
                return True  # ESC ESC: restart
            if byte == 0x5B:  # [
                self._state = _State.CSI
            elif byte in _STRING_INTRODUCERS:
                self._state = _State.STRING
            elif 0x20 <= byte <= 0x2F:
                self._state = _State.ESCAPE_INTERMEDIATE
            elif 0x30 <= byte <= 0x7E:
                self._state = _State.GROUND
            else:
                return self._abort()
            return True
        if state is _State.ESCAPE_INTERMEDIATE:
            if 0x20 <= byte <= 0x2F:
                return True
            if 0x30 <= byte <= 0x7E:
                self._state = _State.GROUND
                return True
            return self._abort()
        if state is _State.CSI:
            if 0x20 <= byte <= 0x3F:
                return True  # parameters and intermediates
            if 0x40 <= byte <= 0x7E:
                self._state = _State.GROUND
                return True
            return self._abort()
        if state is _State.STRING:
            if byte == BEL:
                self._state = _State.GROUND
            elif byte == ESC:
                self._state = _State.STRING_ESC
            elif byte == 0x0A:
                return self._abort()
            return True
        # STRING_ESC: ST ends the string; any other byte starts a new escape sequence
        if byte == 0x5C:  # backslash
            self._state = _State.GROUND
            return True
        self._state = _State.ESCAPE
        return False

    def _abort(self) -> bool:
        self._state = _State.GROUND
        return False


def clean(data: bytes) -> str:
    """Clean a whole byte string at once."""
    cleaner = Cleaner()
    return cleaner.feed(data) + cleaner.flush()
