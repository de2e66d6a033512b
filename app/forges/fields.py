"""Reading and checking the fields of a webhook payload. Pure functions: no I/O, no Flask.

Every problem raises MalformedPayloadError with a sentence that names the field by its
dotted path in the payload and states what was found and what was expected.
"""

import re

from app.forges.base import MalformedPayloadError

# Branch and tag names longer than this are rejected, as the API rejects them for manual runs.
MAX_REF_NAME = 255
# The largest value of PostgreSQL's `integer`, the type of the columns that store pull request numbers.
MAX_INTEGER = 2**31 - 1
COMMIT_ID = re.compile(r"[0-9a-fA-F]{4,64}")
# Characters `git check-ref-format` rejects anywhere in a ref: ASCII control characters, DEL,
# space and ~ ^ : ? * [ \.
REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
ADVICE = "check that the webhook sends the forge's documented payload for this event"


def json_type(value) -> str:
    """Name the JSON type of a decoded value, for messages: 'null', 'a string', 'an object' and so on."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    names = {str: "a string", dict: "an object", list: "an array"}
    return names.get(type(value), "a value of an unknown type")


def _expected(kind: type) -> str:
    return {str: "a string", int: "a whole number", dict: "an object", list: "an array"}[kind]


def field(document: dict, *path: str | int, kind: type = str, optional: bool = False):
    """Return the value at `path` in a payload, which must be of JSON type `kind`.

    A string in `path` is an object's key, an integer a list's index. With `optional`, a
    missing or null value (or a missing object on the way) gives None; a value of another
    type always raises MalformedPayloadError.
    """
    name = ".".join(str(key) for key in path)
    value = document
    for depth, key in enumerate(path):
        if value is None and optional:
            return None
        container = list if isinstance(key, int) else dict
        if not isinstance(value, container):
            where = ".".join(str(key) for key in path[:depth]) or "top-level"
            raise MalformedPayloadError(f"The payload's {where!r} field is {json_type(value)}; expected "
                                        f"{_expected(container)}, so {name!r} cannot be read. {ADVICE.capitalize()}.")
        if key not in value if container is dict else key >= len(value):
            if optional:
                return None
            raise MalformedPayloadError(f"The payload has no {name!r} field; {ADVICE}.")
        value = value[key]
    if value is None and optional:
        return None
    # JSON true and false decode to bool, which Python counts as int.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedPayloadError(f"The payload's {name!r} field is {json_type(value)}; "
                                    f"expected {_expected(kind)}. {ADVICE.capitalize()}.")
    if kind is str:
        _check_storable(value, name)
    return value


def _check_storable(value: str, path: str) -> None:
    # PostgreSQL's text and jsonb types store neither NUL nor the unpaired surrogates that JSON's \u escapes allow.
    if "\x00" in value:
        raise MalformedPayloadError(f"The payload's {path!r} field contains a NUL character, which no text field "
                                    f"accepts. {ADVICE.capitalize()}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedPayloadError(f"The payload's {path!r} field contains an unpaired UTF-16 surrogate, which is "
                                    f"not valid Unicode. {ADVICE.capitalize()}.") from None


def ref_name_problem(name: str) -> str | None:
    """Return why `name` is not a valid branch or tag name, or None when it is.

    The rules are those of `git check-ref-format --branch`, plus a length limit of
    MAX_REF_NAME characters.
    """
    if not name:
        return "it is empty"
    if len(name) > MAX_REF_NAME:
        return f"it is {len(name)} characters long, over the limit of {MAX_REF_NAME}"
    forbidden = REF_FORBIDDEN.search(name)
    if forbidden:
        return f"it contains {forbidden.group()!r}, and Git allows no control character, space or any of ~ ^ : ? * [ \\"
    if ".." in name or "@{" in name or "//" in name:
        return "it contains '..', '@{' or '//'"
    if name == "HEAD":
        return "it is HEAD, which Git keeps for the current commit"
    if name == "@" or name.startswith(("-", "/")) or name.endswith(("/", ".")):
        return "it is '@', starts with '-' or '/', or ends with '/' or '.'"
    for component in name.split("/"):
        if component.startswith(".") or component.endswith(".lock"):
            return f"its part {component!r} starts with '.' or ends with '.lock'"
    return None


def ref_name(value: str, path: str, label: str = "branch") -> str:
    """Return `value`, a branch or tag name read from field `path`; raise MalformedPayloadError if Git rejects it."""
    problem = ref_name_problem(value)
    if problem:
        raise MalformedPayloadError(f"The payload's {path!r} field names {label} {value[:100]!r}, which is not a valid "
                                    f"Git ref name: {problem}. Expected a name that `git check-ref-format` accepts.")
    return value


def ref_field(document: dict, *path: str | int) -> str:
    """Return the branch name at `path`; raise MalformedPayloadError when it is missing or Git rejects it."""
    return ref_name(field(document, *path), ".".join(map(str, path)))


def commit_field(document: dict, *path: str | int, optional: bool = False) -> str | None:
    """Return the commit id at `path`: 4 to 64 hexadecimal digits, or None with `optional` when it is missing."""
    value = field(document, *path, kind=object, optional=optional)
    if value in (None, "") and optional:
        return None
    if not isinstance(value, str) or not COMMIT_ID.fullmatch(value):
        shown = repr(value[:100]) if isinstance(value, str) else json_type(value)
        raise MalformedPayloadError(f"The payload's {'.'.join(map(str, path))!r} field is {shown}; expected a commit id "
                                    f"of 4 to 64 hexadecimal digits. {ADVICE.capitalize()}.")
    return value


def item_number(document: dict, *path: str | int) -> int:
    """Return a pull or merge request number at `path`: a whole number from 1 to MAX_INTEGER."""
    number = field(document, *path, kind=int)
    if not 0 < number <= MAX_INTEGER:
        raise MalformedPayloadError(f"The payload's {'.'.join(map(str, path))!r} field is {number}; expected a pull request "
                                    f"number from 1 to {MAX_INTEGER}. {ADVICE.capitalize()}.")
    return number
