"""Turning raw bytes from a stage's pipes into events, with bounded memory.

Nothing here does I/O: the callers read the pipes and feed the bytes in.
"""

from __future__ import annotations

import json

from .base import MAX_LINE_BYTES, ControlEvent, LogChunk

MAX_CONTROL_LINE_BYTES = 1024 * 1024
"""Maximum length of a control line on file descriptor 3. A longer line is dropped with a warning."""

_PREVIEW_CHARS = 120


def _split_point(buffer: bytearray, limit: int) -> int:
    """Return where to cut a line longer than `limit` without splitting a UTF-8 character."""
    cut = limit
    # A UTF-8 character is at most 4 bytes, so at most 3 continuation bytes precede the cut.
    while cut > limit - 3 and (buffer[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if (buffer[cut] & 0xC0) != 0x80 else limit


def _decode(line: bytes | bytearray) -> str:
    text = bytes(line).decode("utf-8", "replace")
    return text[:-1] if text.endswith("\r") else text


class LineSplitter:
    """Split a byte stream into lines of at most `max_line` bytes, keeping at most one partial line."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add `data` and return the complete lines (without newlines) it finishes."""
        self._buffer += data
        lines = []
        while True:
            newline = self._buffer.find(b"\n", 0, self.max_line + 1)
            if newline >= 0:
                lines.append(bytes(self._buffer[:newline]))
                del self._buffer[: newline + 1]
            elif len(self._buffer) > self.max_line:
                cut = _split_point(self._buffer, self.max_line)
                lines.append(bytes(self._buffer[:cut]))
                del self._buffer[:cut]
            else:
                return lines

    def finish(self) -> list[bytes]:
        """Return the last line if the stream ended without a newline."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return [rest] if rest else []


class OutputDecoder:
    """Turn stdout and stderr bytes into `LogChunk`s until their sum passes `max_bytes`.

    Past the limit, one "system" notice is produced and every further byte is only
    counted, so a stage that floods its output costs no memory and keeps running.
    """

    def __init__(self, max_bytes: int, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.total_bytes = 0
        self.discarding = False
        self._splitters = {"stdout": LineSplitter(max_line), "stderr": LineSplitter(max_line)}

    def feed(self, stream: str, data: bytes) -> list[LogChunk]:
        """Return the chunks that `data`, read from `stream`, completes."""
        room = self.max_bytes - self.total_bytes
        self.total_bytes += len(data)
        if self.discarding:
            return []
        if len(data) <= room:
            return [LogChunk(stream, _decode(line)) for line in self._splitters[stream].feed(data)]

        chunks = [LogChunk(stream, _decode(line)) for line in self._splitters[stream].feed(data[:room])]
        chunks += self._flush_all()
        chunks.append(LogChunk("system", self._limit_notice()))
        self.discarding = True
        return chunks

    def finish(self) -> list[LogChunk]:
        """Return the unterminated last lines once the pipes are closed."""
        return [] if self.discarding else self._flush_all()

    def _flush_all(self) -> list[LogChunk]:
        return [LogChunk(name, _decode(line)) for name, splitter in self._splitters.items() for line in splitter.finish()]

    def _limit_notice(self) -> str:
        return (
            f"Output limit of {self.max_bytes} bytes reached: further output of this stage (stdout and "
            "stderr) is discarded, and the stage keeps running"
        )


class ControlDecoder:
    """Turn the lines written on file descriptor 3 into `ControlEvent`s.

    An invalid line becomes a "system" warning and never stops the stage.
    """

    def __init__(self) -> None:
        self._splitter = LineSplitter(MAX_CONTROL_LINE_BYTES)
        self._skipping_long_line = False

    def feed(self, data: bytes) -> list[ControlEvent | LogChunk]:
        """Return the events and warnings for the lines that `data` completes."""
        events = []
        for line in self._splitter.feed(data):
            # The splitter returns a line of exactly the maximum size when it had to cut one.
            too_long = len(line) >= MAX_CONTROL_LINE_BYTES
            if self._skipping_long_line:
                self._skipping_long_line = too_long
                continue
            if too_long:
                self._skipping_long_line = True
                events.append(LogChunk("system", f"Ignored a control line longer than {MAX_CONTROL_LINE_BYTES} bytes on file descriptor 3"))
                continue
            events.extend(self._parse(line))
        return events

    def finish(self) -> list[ControlEvent | LogChunk]:
        """Parse the last line if the channel closed without a newline."""
        lines = self._splitter.finish()
        if self._skipping_long_line:
            return []
        return [event for line in lines for event in self._parse(line)]

    def _parse(self, line: bytes) -> list[ControlEvent | LogChunk]:
        if not line.strip():
            return []
        try:
            data = json.loads(line)
        except ValueError as error:
            return [self._warning(line, f"it is not valid JSON ({error})")]
        if not isinstance(data, dict):
            return [self._warning(line, f"it is a JSON {type(data).__name__}, expected an object")]
        return [ControlEvent(data)]

    def _warning(self, line: bytes, problem: str) -> LogChunk:
        preview = _decode(line)[:_PREVIEW_CHARS]
        return LogChunk("system", f"Ignored a control line on file descriptor 3 because {problem}: {preview!r}")
