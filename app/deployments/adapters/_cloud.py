"""Helpers shared by the cloud adapters: credentials kept out of messages, and numeric settings checked."""

import json

REDACTED = "[redacted]"
# Values this short (a region, "true") would blank out ordinary words of a message.
MIN_SECRET_LENGTH = 6


def redact(text: str, credentials: dict) -> str:
    """Return `text` with every credential value (and every string inside a JSON credential) replaced."""
    for secret in sorted(_secret_strings(credentials), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _secret_strings(value: object) -> list[str]:
    if isinstance(value, str):
        found = [value] if len(value) >= MIN_SECRET_LENGTH else []
        # A service-account key arrives as one JSON string; its private key may show up on its own.
        if value.lstrip().startswith("{"):
            try:
                found += _secret_strings(json.loads(value))
            except ValueError:
                pass
        return found
    if isinstance(value, dict):
        return [secret for item in value.values() for secret in _secret_strings(item)]
    if isinstance(value, (list, tuple)):
        return [secret for item in value for secret in _secret_strings(item)]
    return []


def number_problems(settings: dict, ranges: dict[str, tuple[float, float]]) -> list[str]:
    """Return a problem for each setting in `ranges` that is present but not a number within its range."""
    problems = []
    for key, (low, high) in ranges.items():
        value = settings.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            problems.append(f"Setting {key!r} must be a number from {low:g} to {high:g}, got {value!r}")
    return problems
