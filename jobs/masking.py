"""Masking secret values in log lines before they are stored or published.

For each secret the masker looks for the value itself, the value without its
trailing newline, each line of a multi-line value, its URL-encoded forms, its
JSON-escaped form, and its base64 forms (standard and URL-safe alphabets).
Base64 of a longer byte stream encodes the secret differently depending on
where it starts modulo 3 bytes, so each of the three alignments contributes
the run of characters that depends on the secret's bytes alone.

Lines reach the masker one at a time. The executor joins partial writes into
lines, but it cuts a line longer than its limit into several chunks, so a
secret can straddle two consecutive chunks. A chunk whose end could be the
start of a secret is therefore held back until the next chunk of the same
stream arrives (or `HOLD_SECONDS` pass, or the stage ends), and a match across
the boundary masks the two pieces.
"""

import base64
import json
import time
from urllib.parse import quote, quote_plus

MASK = "***"
# Lines of a multi-line secret shorter than this are not masked on their own: lines such
# as "}" would garble ordinary output and give little away.
MIN_LINE_LENGTH = 8
HOLD_SECONDS = 1.0


def _base64_forms(data: bytes) -> set[str]:
    forms = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode().rstrip("=")
        # Characters carrying bits of the padding bytes before, or of unknown bytes after, vary.
        start = -(-8 * offset // 6)
        end = (8 * (offset + len(data))) // 6
        core = encoded[start:end]
        if core:
            forms.add(core)
            forms.add(core.replace("+", "-").replace("/", "_"))
    return forms


def secret_forms(value: str) -> set[str]:
    """Return every string whose appearance in a log reveals `value`."""
    forms: set[str] = set()
    candidates = {value, value.rstrip("\r\n"), value.strip()}
    lines = [line.strip() for line in value.splitlines()]
    for candidate in candidates:
        if not candidate:
            continue
        forms.add(candidate)
        forms.add(quote(candidate, safe=""))
        forms.add(quote_plus(candidate))
        forms.add(json.dumps(candidate)[1:-1])
        forms |= _base64_forms(candidate.encode())
    forms |= {line for line in lines if len(line) >= MIN_LINE_LENGTH}
    return {form for form in forms if len(form) >= min(MIN_LINE_LENGTH, len(value.strip())) and "\n" not in form}


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _apply(text: str, ranges: list[tuple[int, int]]) -> str:
    parts, position = [], 0
    for start, end in _merge(ranges):
        parts.append(text[position:start])
        parts.append(MASK)
        position = end
    parts.append(text[position:])
    return "".join(parts)


class SecretMasker:
    """Masks secret values in a stream of (stream, text) lines; not thread-safe (the log sink locks).

    `feed` returns the lines that may be written now; `flush` returns a held line.
    """

    def __init__(self, values: list[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if value and value.strip():
                forms |= secret_forms(value)
        self.forms = sorted(forms, key=len, reverse=True)
        self._longest = max((len(form) for form in self.forms), default=0)
        self._held: tuple[str, str, list[tuple[int, int]], float] | None = None

    def _ranges(self, text: str) -> list[tuple[int, int]]:
        ranges = []
        for form in self.forms:
            start = text.find(form)
            while start != -1:
                ranges.append((start, start + len(form)))
                start = text.find(form, start + 1)
        return ranges

    def _may_continue(self, text: str) -> bool:
        """Return whether the end of `text` is the start of some form (so the next chunk may complete it)."""
        for form in self.forms:
            tail = text[-(len(form) - 1):] if len(form) > 1 else ""
            index = tail.find(form[0])
            while index != -1:
                if form.startswith(tail[index:]):
                    return True
                index = tail.find(form[0], index + 1)
        return False

    def mask(self, text: str) -> str:
        """Return `text` with every secret form replaced by the mask."""
        return _apply(text, self._ranges(text)) if self.forms else text

    def feed(self, stream: str, text: str, now: float | None = None) -> list[tuple[str, str]]:
        """Take one line; return the lines ready to write, masked, in order."""
        if not self.forms:
            return [(stream, text)]
        now = time.monotonic() if now is None else now
        ready: list[tuple[str, str]] = []
        carried: list[tuple[int, int]] = []
        if self._held is not None:
            held_stream, held_text, held_ranges, _ = self._held
            self._held = None
            if held_stream == stream:
                joined = self._ranges(held_text + text)
                boundary = len(held_text)
                held_ranges = held_ranges + [(start, min(end, boundary)) for start, end in joined if start < boundary]
                carried = [(max(start - boundary, 0), end - boundary) for start, end in joined if end > boundary]
            ready.append((held_stream, _apply(held_text, held_ranges + self._ranges(held_text))))
        ranges = carried + self._ranges(text)
        if self._may_continue(text):
            self._held = (stream, text, ranges, now)
        else:
            ready.append((stream, _apply(text, ranges)))
        return ready

    def flush(self, older_than: float | None = None, now: float | None = None) -> list[tuple[str, str]]:
        """Return the held line, if any (only if held longer than `older_than` seconds, when given)."""
        if self._held is None:
            return []
        stream, text, ranges, since = self._held
        now = time.monotonic() if now is None else now
        if older_than is not None and now - since < older_than:
            return []
        self._held = None
        return [(stream, _apply(text, ranges + self._ranges(text)))]
