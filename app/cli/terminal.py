"""Stage output made safe to print on a terminal.

Stage output is the repository's code speaking. Colours (SGR sequences such as
`ESC [ 32 m`) are kept, because test runners and linters use them. Every other
escape sequence is removed: OSC sequences can set the clipboard (OSC 52), retitle
the window or draw links, and cursor movements can overwrite lines already printed,
which would let a stage hide its own output.
"""

import re

# ESC [ ... m, the Select Graphic Rendition sequence that sets colours and styles.
_SGR = r"\x1b\[[0-9;:]*m"
# Everything else that starts with ESC or the 8-bit CSI and OSC introducers: CSI, OSC (ended by BEL
# or ESC \), other two-character escapes, and lone ESC.
_OTHER_ESCAPES = r"(?:\x1b\[|\x9b)[0-9;:?<=>!\"'$ ]*[@-~]|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[@-_]?"
_ESCAPES = re.compile(f"({_SGR})|{_OTHER_ESCAPES}")
# Control characters other than tab; carriage returns would let a line overwrite itself on screen.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f\x80-\x9f]")


# Any character that starts an escape sequence or is a control character to remove: most lines have none.
_NEEDS_CLEANING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def plain(text: str) -> str:
    """Return `text` without any escape sequence, colours included, and without control characters but tab."""
    if _NEEDS_CLEANING.search(text) is None:
        return text
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def printable(text: str) -> str:
    """Return `text` with colour sequences kept and every other escape sequence and control character removed."""
    if _NEEDS_CLEANING.search(text) is None:
        return text
    kept = _ESCAPES.sub(lambda match: match.group(1) or "", text)
    return _CONTROLS.sub("", kept)
