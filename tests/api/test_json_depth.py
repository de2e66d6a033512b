"""The nesting check that runs on JSON bodies before they are decoded."""

import json
import threading

import pytest

from app.json_depth import MAX_JSON_DEPTH, nests_deeper_than


@pytest.mark.parametrize("text, deeper", [
    ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, False),
    ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), True),
    ('{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1), True),
    ("[" * 5000, True),
    (json.dumps({"text": "[" * 5000, "quoted": '\\"[[[['}), False),
    (json.dumps([[1, {"b": ["]]]"]}]] * 1000), False),
])
def test_depth_counts_brackets_outside_strings(text, deeper):
    assert nests_deeper_than(text) is deeper


@pytest.mark.parametrize("text", ['"' + "a" * 60, '["' + '\\"[' * 200_000, "[]" * 500_000])
def test_hostile_text_is_checked_in_linear_time(text):
    # A pattern with a quantifier inside a quantifier took 4 s on an unterminated string of
    # 28 bytes, four times longer for every 2 bytes more. The check must end, whatever the text.
    done = threading.Event()
    thread = threading.Thread(target=lambda: (nests_deeper_than(text), done.set()), daemon=True)
    thread.start()
    thread.join(30)
    assert done.is_set()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-be", "utf-32", "utf-32-le"])
def test_depth_is_read_in_any_json_encoding(encoding):
    # In UTF-16 an escaped quote is the bytes '\\', 0, '"', 0: read byte by byte, the quote
    # looked real and hid the brackets after it.
    text = '{"name": "\\"", "deep": ' + "[" * 3000 + "]" * 3000 + "}"
    assert nests_deeper_than(text.encode(encoding)) is True
