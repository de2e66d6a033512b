"""Template filters shared by the pages."""

import re
from datetime import datetime

from markupsafe import Markup, escape

from app.cli.terminal import plain as plain_text
from app.models._columns import utcnow
from app.web import web


@web.app_template_filter("duration")
def format_duration(seconds: float | None) -> str:
    """Format seconds as "850 ms", "42.1 s", "3 min 05 s" or "2 h 04 min"."""
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@web.app_template_filter("elapsed")
def elapsed(start: datetime | None, end: datetime | None = None) -> str:
    """Format the time from `start` to `end` (or now) as `duration` does."""
    if start is None:
        return "–"
    return format_duration(((end or utcnow()) - start).total_seconds())


@web.app_template_filter("ago")
def ago(moment: datetime | None) -> str:
    """Format a past moment as "just now", "5 min ago", "3 h ago" or a date."""
    if moment is None:
        return ""
    seconds = (utcnow() - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return moment.strftime("%Y-%m-%d")


# A search result shows at most this many characters of its line, around the first match.
EXCERPT_CHARACTERS = 400


@web.app_template_filter("highlight")
def highlight(text: str, term: str) -> Markup:
    """Escape a log line, drop its escape sequences and control characters, and wrap each case-insensitive match of `term` in <mark>.

    A line longer than EXCERPT_CHARACTERS is cut to that many characters around its
    first match, with "…" where text was left out. A line of 64 KiB matching on every
    few characters would otherwise make a page of megabytes.
    """
    plain = plain_text(text)
    if len(plain) > EXCERPT_CHARACTERS:
        plain = _excerpt(plain, term, text)
    if not term:
        return escape(plain)
    parts = re.split(f"({re.escape(term)})", plain, flags=re.IGNORECASE)
    return Markup("").join(Markup("<mark>{}</mark>").format(part) if index % 2 else escape(part)
                           for index, part in enumerate(parts))


def _excerpt(plain: str, term: str, raw: str) -> str:
    # Searched in the line itself: lowercasing can change a line's length (U+0130 becomes two characters).
    match = re.search(re.escape(term), plain, flags=re.IGNORECASE) if term else None
    found = match.start() if match else 0
    raw_match = re.search(re.escape(term), raw, flags=re.IGNORECASE) if term and match is None else None
    if raw_match is not None:
        # The stored line matched across a colour code, which `plain` no longer has: show where it was.
        found = len(plain_text(raw[:raw_match.start()]))
    start = max(0, min(found - EXCERPT_CHARACTERS // 2, len(plain) - EXCERPT_CHARACTERS))
    end = start + EXCERPT_CHARACTERS
    before = "…" if start else ""
    after = "…" if end < len(plain) else ""
    return before + plain[start:end] + after
