"""Checks on text from a request before it reaches a query, shared by the JSON API and the pages (free of Flask)."""


def text_problem(field: str, value: str, max_length: int) -> str | None:
    """Return why text `value` of `field` is rejected, or None when it is acceptable.

    PostgreSQL text cannot contain NUL, so psycopg raises DataError for a NUL even in a
    query parameter. This check reports it as a message that names the field instead.
    """
    if "\x00" in value:
        return f"'{field}' contains a NUL character, which no field accepts."
    if len(value) > max_length:
        return f"'{field}' is {len(value)} characters long; expected at most {max_length}."
    return None
