"""Reading and validating query parameters and JSON bodies; every problem becomes a 422 that names the field."""

import json
import re
from datetime import datetime
from urllib.parse import urlencode

from flask import abort, request
from sqlalchemy import Select, func, select

from app.extensions import db
from app.text_checks import text_problem

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
MAX_PAGE = 100_000
# Lists count their rows up to this many; GitLab's API stops counting at the same size.
COUNT_LIMIT = 10_000
COMMIT_ID = re.compile(r"^[0-9a-fA-F]{4,64}$")


def _check_text(field: str, value: str, max_length: int) -> str:
    if problem := text_problem(field, value, max_length):
        abort(422, problem)
    return value


def text_arg(name: str, max_length: int = 255) -> str | None:
    """Return query parameter `name`, or None when absent or empty."""
    value = request.args.get(name)
    return _check_text(name, value, max_length) if value else None


def int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    """Return query parameter `name` as an integer within [minimum, maximum]."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(422, f"'{name}' must be a whole number, got {raw[:50]!r}.")
    if not minimum <= value <= maximum:
        abort(422, f"'{name}' must be between {minimum} and {maximum}, got {value}.")
    return value


def choice_arg(name: str, choices) -> str | None:
    """Return query parameter `name`, which must be one of `choices`."""
    value = request.args.get(name)
    if not value:
        return None
    if value not in choices:
        abort(422, f"'{name}' must be one of {', '.join(choices)}, got {value[:50]!r}.")
    return value


def time_arg(name: str) -> datetime | None:
    """Return query parameter `name` as an ISO 8601 date or time (UTC when it has no offset)."""
    value = request.args.get(name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        abort(422, f"'{name}' must be an ISO 8601 date or time such as 2026-01-31T12:00:00Z, got {value[:50]!r}.")
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment


def json_body(*, optional: bool = False) -> dict:
    """Return the request's JSON object, or {} for a request without a body when `optional`; 422 for any other body."""
    # Werkzeug moves a form-encoded body into request.form and leaves request.data empty, so
    # the length decides whether a body came. A form body gets 422, not the defaults.
    sent = bool(request.content_length) or request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    if optional and not sent:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(422, _json_problem())
    return body


def _json_problem() -> str:
    """Return why the body is not a JSON object, with the parser's message when the JSON is invalid."""
    if request.is_json:
        try:
            json.loads(request.get_data(cache=True))
        except ValueError as error:
            return f"The request body is not valid JSON ({error}). Send a JSON object."
    return "The request body must be a JSON object (Content-Type: application/json)."


def reject_other_fields(body: dict, fields: tuple[str, ...], subject: str) -> None:
    """Abort with 422 when a body that creates or starts something has a field outside `fields`.

    Ignoring a misspelt field would make the request do something other than what was asked.
    """
    if unknown := _unknown_fields(body, fields):
        accepted = " or ".join(map(repr, fields))
        abort(422, f"Unknown field {', '.join(map(repr, unknown))}: {subject} takes {accepted}.")


def reject_unknown_fields(body: dict, fields: tuple[str, ...], subject: str, advice: str = "") -> None:
    """Abort with 422 when the body has a field outside `fields`, naming it and the fields that can change.

    A PATCH that ignored such a field would return 200, and the caller would believe the field changed.
    """
    if unknown := _unknown_fields(body, fields):
        abort(422, f"Cannot change {', '.join(map(repr, unknown))} of {subject}: only {', '.join(fields)} "
                   f"can change.{' ' + advice if advice else ''}")


def _unknown_fields(body: dict, fields: tuple[str, ...]) -> list[str]:
    return sorted(set(body) - set(fields))


def body_text(body: dict, field: str, *, required: bool = False, max_length: int = 255, pattern: re.Pattern | None = None,
              rule: str = "") -> str | None:
    """Return string `field` of a JSON body; 422 when it is missing (if required), not a string or invalid."""
    value = body.get(field)
    if value is None:
        if required:
            abort(422, f"'{field}' is missing.")
        return None
    if not isinstance(value, str):
        abort(422, f"'{field}' must be a string, got {type(value).__name__}.")
    _check_text(field, value, max_length)
    if pattern is not None and not pattern.match(value):
        abort(422, f"'{field}' {value[:100]!r} is invalid: {rule}")
    return value


def body_bool(body: dict, field: str) -> bool | None:
    value = body.get(field)
    if value is not None and not isinstance(value, bool):
        abort(422, f"'{field}' must be true or false, got {type(value).__name__}.")
    return value


def paginate(query: Select, key: str, serialize, endpoint_args: dict | None = None):
    """Run one page of `query` from `page`/`per_page`; return (document, headers) with `total` and a Link header.

    Counting stops after COUNT_LIMIT rows, because counting every run of a large
    instance costs more than the page itself. Beyond that `total` is null, the
    X-Total-Count header and the "last" link are left out, and "next" is still given.
    """
    page = int_arg("page", 1, 1, MAX_PAGE)
    per_page = int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    counted = db.session.scalar(select(func.count()).select_from(query.order_by(None).limit(COUNT_LIMIT + 1).subquery()))
    total = counted if counted <= COUNT_LIMIT else None
    rows = db.session.scalars(query.limit(per_page + 1).offset((page - 1) * per_page)).all()
    items, more = rows[:per_page], len(rows) > per_page
    last = max(1, -(-total // per_page)) if total is not None else None
    document = {key: [serialize(item) for item in items], "total": total, "page": page, "per_page": per_page}
    headers = {"Link": _link_header(page, per_page, last, more)}
    if total is not None:
        headers["X-Total-Count"] = str(total)
    return document, headers


def _link_header(page: int, per_page: int, last: int | None, more: bool) -> str:
    def url(number: int) -> str:
        arguments = {**request.args.to_dict(), "page": number, "per_page": per_page}
        return f"<{request.base_url}?{urlencode(arguments)}>"

    links = [f'{url(1)}; rel="first"']
    if last is not None:
        links.append(f'{url(last)}; rel="last"')
    if page > 1:
        links.append(f'{url(page - 1 if last is None else min(page - 1, last))}; rel="prev"')
    if more:
        links.append(f'{url(page + 1)}; rel="next"')
    return ", ".join(links)
