"""The nesting limit of JSON bodies, checked on the raw text before it is decoded.

Python's decoder recurses once per level, and at thousands of levels it fails deep in
the interpreter's stack with a RecursionError, which Flask reports as a server error.
"""

import re

from flask.json.provider import DefaultJSONProvider

# Objects and arrays nested deeper than this are rejected. The recorded forge payloads in the
# tests nest at most 10 levels deep, and the delivery page's pretty-printer recurses once per level.
MAX_JSON_DEPTH = 100

# A JSON string (with its escapes) or a bracket; in UTF-8 bytes these are all ASCII.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]+|\\.)*"|[][{}]')


def nests_deeper_than(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Return whether the brackets of a JSON text, outside its strings, nest deeper than `limit`."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text.encode(errors="replace") if isinstance(text, str) else text):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


class DepthLimitedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, rejecting request bodies that nest deeper than MAX_JSON_DEPTH.

    The ValueError makes `request.get_json()` treat the body as invalid JSON: None with
    `silent=True`, else 400 Bad Request.
    """

    def loads(self, s: str | bytes, **kwargs):
        if nests_deeper_than(s):
            raise ValueError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
        return super().loads(s, **kwargs)
