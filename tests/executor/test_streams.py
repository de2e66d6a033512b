"""Line splitting, the output cap and control-line parsing, without any process."""

from jobs.executor._streams import MAX_CONTROL_LINE_BYTES, ControlDecoder, LineSplitter, OutputDecoder
from jobs.executor.base import MAX_LINE_BYTES, ControlEvent, LogChunk


def test_splitter_joins_lines_across_reads():
    splitter = LineSplitter()
    assert splitter.feed(b"hel") == []
    assert splitter.feed(b"lo\nwor") == [b"hello"]
    assert splitter.feed(b"ld\n\n") == [b"world", b""]
    assert splitter.finish() == []


def test_splitter_returns_unterminated_last_line():
    splitter = LineSplitter()
    splitter.feed(b"a\nlast")
    assert splitter.finish() == [b"last"]


def test_splitter_cuts_long_line_at_limit():
    splitter = LineSplitter(max_line=10)
    lines = splitter.feed(b"x" * 25 + b"\n")
    assert lines == [b"x" * 10, b"x" * 10, b"x" * 5]


def test_splitter_never_cuts_inside_utf8_character():
    splitter = LineSplitter(max_line=10)
    text = ("é" * 8).encode()  # 16 bytes of two-byte characters, starting at an even offset
    lines = splitter.feed(b"x" + text + b"\n")
    assert [line.decode() for line in lines] == ["x" + "é" * 4, "é" * 4]


def test_output_decoder_strips_crlf_and_replaces_invalid_utf8():
    decoder = OutputDecoder(max_bytes=1000)
    chunks = decoder.feed("stderr", b"caf\xc3\xa9\r\n\xff\xfe\n")
    assert chunks == [LogChunk("stderr", "café"), LogChunk("stderr", "\ufffd\ufffd")]


def test_output_decoder_keeps_streams_apart():
    decoder = OutputDecoder(max_bytes=1000)
    assert decoder.feed("stdout", b"out-part") == []
    assert decoder.feed("stderr", b"err\n") == [LogChunk("stderr", "err")]
    assert decoder.feed("stdout", b"\n") == [LogChunk("stdout", "out-part")]


def test_output_limit_emits_one_notice_then_discards():
    decoder = OutputDecoder(max_bytes=10)
    chunks = decoder.feed("stdout", b"12345\n67890abcdef\n")
    assert chunks[:2] == [LogChunk("stdout", "12345"), LogChunk("stdout", "6789")]
    assert chunks[2].stream == "system"
    assert "Output limit of 10 bytes" in chunks[2].text
    assert decoder.feed("stdout", b"more\n" * 1000) == []
    assert decoder.feed("stderr", b"more\n") == []
    assert decoder.finish() == []
    assert decoder.total_bytes == 18 + 5000 + 5


def test_output_splits_line_longer_than_64_kib():
    decoder = OutputDecoder(max_bytes=10 * MAX_LINE_BYTES)
    chunks = decoder.feed("stdout", b"y" * (2 * MAX_LINE_BYTES + 3))
    chunks += decoder.finish()
    assert [len(chunk.text) for chunk in chunks] == [MAX_LINE_BYTES, MAX_LINE_BYTES, 3]


def test_control_object_becomes_event():
    decoder = ControlDecoder()
    assert decoder.feed(b'{"type": "step", "n": 1}\n') == [ControlEvent({"type": "step", "n": 1})]


def test_control_invalid_json_becomes_warning():
    decoder = ControlDecoder()
    (warning,) = decoder.feed(b"not json\n")
    assert warning.stream == "system"
    assert "not valid JSON" in warning.text
    assert "'not json'" in warning.text


def test_control_non_object_becomes_warning():
    decoder = ControlDecoder()
    (warning,) = decoder.feed(b"[1, 2]\n")
    assert "expected an object" in warning.text


def test_control_blank_lines_are_ignored():
    assert ControlDecoder().feed(b"\n  \n") == []


def test_control_overlong_line_is_dropped_once():
    decoder = ControlDecoder()
    events = decoder.feed(b"{" + b" " * (MAX_CONTROL_LINE_BYTES * 2) + b"}\n")
    events += decoder.feed(b'{"after": true}\n')
    assert len(events) == 2
    assert events[0].stream == "system"
    assert "longer than" in events[0].text
    assert events[1] == ControlEvent({"after": True})


def test_control_last_line_without_newline_is_parsed():
    decoder = ControlDecoder()
    assert decoder.feed(b'{"a": 1}') == []
    assert decoder.finish() == [ControlEvent({"a": 1})]
