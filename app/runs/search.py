"""Substring search over the stored log lines of a project's runs.

`text ILIKE '%term%'` is answered from the trigram index on `log_lines.text`
(migration 0030), which needs terms of at least three characters to narrow
anything down; shorter terms are rejected rather than scanning every line.
`bench/log_search.py` measures this query over 5 million lines.
"""

from dataclasses import dataclass

from sqlalchemy import text

from app.extensions import db
from app.text_checks import text_problem

MIN_TERM_LENGTH = 3
MAX_TERM_LENGTH = 200
# Maximum length of the stage filter, in characters, the same as in the JSON API's run log.
MAX_STAGE_LENGTH = 500
RESULTS_PER_PAGE = 50
STREAMS = ("stdout", "stderr", "system")
SEARCH_SQL = (
    "SELECT l.run_id, r.number, l.seq, s.name AS stage, l.stream, l.text FROM log_lines l "
    "JOIN runs r ON r.id = l.run_id LEFT JOIN stages s ON s.id = l.stage_id "
    "WHERE {conditions} ORDER BY l.run_id DESC, l.seq DESC LIMIT :limit OFFSET :offset"
)


class SearchError(ValueError):
    """A log search cannot run as requested; the message says which value is wrong."""


@dataclass(frozen=True)
class LogMatch:
    run_id: int
    run_number: int
    seq: int
    stage: str | None
    stream: str
    text: str


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def check_term(term: str, stream: str = "", stage: str = "") -> None:
    """Raise SearchError for a term that is too short, too long or contains NUL, an unknown stream or an invalid stage."""
    if len(term) < MIN_TERM_LENGTH:
        raise SearchError(f"Search for at least {MIN_TERM_LENGTH} characters; {term!r} is shorter.")
    if len(term) > MAX_TERM_LENGTH:
        raise SearchError(f"Search for at most {MAX_TERM_LENGTH} characters.")
    if problem := text_problem("q", term, MAX_TERM_LENGTH) or text_problem("stage", stage, MAX_STAGE_LENGTH):
        raise SearchError(problem)
    if stream and stream not in STREAMS:
        raise SearchError(f"Stream {stream!r} is invalid: expected one of {', '.join(STREAMS)}.")


def search_logs(project_id: int, term: str, *, stage: str = "", stream: str = "", page: int = 1,
                per_page: int = RESULTS_PER_PAGE) -> list[LogMatch]:
    """Return log lines of the project containing `term` (case-insensitive), newest run first.

    Returns at most `per_page` + 1 matches, so the caller can tell whether a next page exists.
    Raises SearchError for an invalid term or stream.
    """
    check_term(term, stream, stage)
    conditions = ["r.project_id = :project_id", "l.text ILIKE :pattern"]
    params = {"project_id": project_id, "pattern": _like_pattern(term), "limit": per_page + 1,
              "offset": (max(page, 1) - 1) * per_page}
    if stage:
        conditions.append("s.name = :stage")
        params["stage"] = stage
    if stream:
        conditions.append("l.stream = :stream")
        params["stream"] = stream
    query = text(SEARCH_SQL.format(conditions=" AND ".join(conditions)))
    rows = db.session.execute(query, params).all()
    return [LogMatch(row.run_id, row.number, row.seq, row.stage, row.stream, row.text) for row in rows]


def stage_names(project_id: int, recent_runs: int = 200) -> list[str]:
    """List the stage names of the project's recent runs, for the stage filter."""
    query = text(
        "SELECT DISTINCT s.name FROM stages s WHERE s.run_id IN "
        "(SELECT id FROM runs WHERE project_id = :project_id ORDER BY id DESC LIMIT :recent) ORDER BY s.name"
    )
    return list(db.session.scalars(query, {"project_id": project_id, "recent": recent_runs}))
