"""The nesting limit of JSON bodies, checked on the raw text before it is decoded.

Python's decoder recurses once per level, and at thousands of levels it fails deep in
the interpreter's stack with a RecursionError, which Flask reports as a server error.
"""

import json
import re
from array import array
from itertools import accumulate

from flask.json.provider import DefaultJSONProvider

# Objects and arrays nested deeper than this are rejected. The recorded forge payloads in the
# tests nest at most 10 levels deep, and the delivery page's pretty-printer recurses once per level.
MAX_JSON_DEPTH = 100

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
# With the escapes gone, a string cannot contain a quote. An unterminated string can only
# be the last one, so each attempt to match ends at the next quote or at the end: linear time.
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
# Each opening bracket as +1 and each closing one as -1, read as signed bytes. Braces count
# as brackets: a mismatched pair is invalid JSON, which the decoder rejects where it is.
_AS_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def nests_deeper_than(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Return whether the brackets of a JSON text, outside its strings, nest deeper than `limit`.

    Every step runs in C in linear time, whatever the text: 5 MB of brackets took 0.1 s
    here. The escapes and strings are cut out, then everything but the brackets, and the
    deepest level is the highest running sum of +1 and -1 steps.
    """
    if not isinstance(text, str):
        # Read as the decoder will: it takes UTF-16 and UTF-32 too, where a byte-wise scan
        # would take an escaped quote for a real one and miss the brackets after it.
        text = bytes(text).decode(json.detect_encoding(text), errors="replace")
    data = text.encode(errors="replace")
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    steps = _STRING.sub(b"", _ESCAPE.sub(b"", data)).translate(_AS_STEPS, _NOT_BRACKETS)
    return max(accumulate(array("b", steps)), default=0) > limit


class DepthLimitedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, rejecting request bodies that nest deeper than MAX_JSON_DEPTH.

    The ValueError makes `request.get_json()` treat the body as invalid JSON: None with
    `silent=True`, else 400 Bad Request.
    """

    def loads(self, s: str | bytes, **kwargs):
        if nests_deeper_than(s):
            raise ValueError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
        return super().loads(s, **kwargs)
