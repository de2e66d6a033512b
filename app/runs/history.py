"""Reading runs for the pages: a project's filtered history and the dashboard's overview."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, UTC

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import distinct_on

from app.extensions import db
from app.models import Project, Run, RunStatus
from app.runs.events import EVENT_KINDS
from app.text_checks import text_problem

RUNS_PER_PAGE = 25
# Maximum lengths of the branch and author filters, in characters. The JSON API's run list uses the same.
MAX_BRANCH_LENGTH = 255
MAX_AUTHOR_LENGTH = 300
# The dashboard lists at most this many running and queued runs; the counts stay exact.
ACTIVE_SHOWN = 50


class FilterError(ValueError):
    """A history filter has an invalid value; the message names it."""


@dataclass(frozen=True)
class RunFilters:
    """The history page's filters; empty values filter nothing."""

    branch: str = ""
    status: str = ""
    event: str = ""
    author: str = ""
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_args(cls, args) -> "RunFilters":
        """Build filters from query arguments; raise FilterError when any of them is invalid."""
        branch, author = _text(args, "branch", MAX_BRANCH_LENGTH), _text(args, "author", MAX_AUTHOR_LENGTH)
        status, event = args.get("status", "").strip(), args.get("event", "").strip()
        if status and status not in RunStatus.__members__.values():
            raise FilterError(f"Status {status!r} is invalid: expected one of {', '.join(RunStatus)}.")
        if event and event not in EVENT_KINDS:
            raise FilterError(f"Event {event!r} is invalid: expected one of {', '.join(EVENT_KINDS)}.")
        return cls(branch=branch, status=status, event=event, author=author, since=_date(args.get("since", ""), "since"),
                   until=_date(args.get("until", ""), "until"))

    def apply(self, query: Select) -> Select:
        if self.branch:
            query = query.where(Run.branch == self.branch)
        if self.status:
            query = query.where(Run.status == self.status)
        if self.event:
            query = query.where(Run.event == self.event)
        if self.author:
            query = query.where(Run.author.ilike(f"%{_escape_like(self.author)}%", escape="\\"))
        if self.since:
            query = query.where(Run.queued_at >= datetime.combine(self.since, time(), UTC))
        if self.until:
            query = query.where(Run.queued_at < datetime.combine(self.until + timedelta(days=1), time(), UTC))
        return query

    def args(self) -> dict:
        """Return the filters as query arguments, leaving out empty ones (for links)."""
        values = {"branch": self.branch, "status": self.status, "event": self.event, "author": self.author,
                  "since": self.since.isoformat() if self.since else "",
                  "until": self.until.isoformat() if self.until else ""}
        return {key: value for key, value in values.items() if value}


def _text(args, name: str, max_length: int) -> str:
    value = args.get(name, "").strip()
    if problem := text_problem(name, value, max_length):
        raise FilterError(problem)
    return value


def _date(value: str, name: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"'{name}' must be a date such as 2025-01-31, not {value!r}.") from None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class Page:
    """One page of runs with what the pager needs."""

    runs: list[Run]
    number: int
    total: int
    per_page: int = RUNS_PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def project_history(project: Project, filters: RunFilters, page: int = 1) -> Page:
    """Return one page of the project's runs matching `filters`, newest first."""
    query = filters.apply(select(Run).where(Run.project_id == project.id))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = max(1, min(page, max(1, -(-total // RUNS_PER_PAGE))))
    runs = db.session.scalars(query.order_by(Run.number.desc()).offset((page - 1) * RUNS_PER_PAGE)
                              .limit(RUNS_PER_PAGE)).all()
    return Page(runs, page, total)


def project_branches(project: Project) -> list[str]:
    """List the branches the project has runs of, for the branch filter."""
    return list(db.session.scalars(select(Run.branch).where(Run.project_id == project.id, Run.branch.is_not(None))
                                   .distinct().order_by(Run.branch)))


@dataclass
class ProjectOverview:
    project: Project
    # The newest run of each branch (and of each tag-less, branch-less event), newest first.
    latest_by_branch: list[Run] = field(default_factory=list)


@dataclass
class Overview:
    """What the dashboard shows."""

    projects: list[ProjectOverview]
    running: list[Run]
    queued: list[Run]
    running_count: int
    queued_count: int

    @property
    def active(self) -> bool:
        return bool(self.running_count or self.queued_count)


def dashboard_overview(projects_query: Select) -> Overview:
    """Return the last run per branch of each project in `projects_query`, and its running and queued runs."""
    projects = db.session.scalars(projects_query).all()
    ids = [project.id for project in projects]
    latest = db.session.scalars(
        select(Run).where(Run.project_id.in_(ids))
        .ext(distinct_on(Run.project_id, Run.branch)).order_by(Run.project_id, Run.branch, Run.number.desc())
    ).all()
    by_project: dict[int, list[Run]] = {project_id: [] for project_id in ids}
    for run in latest:
        by_project[run.project_id].append(run)
    overviews = [ProjectOverview(project, sorted(by_project[project.id], key=lambda run: run.number, reverse=True))
                 for project in projects]
    running, running_count = _active(ids, RunStatus.RUNNING)
    queued, queued_count = _active(ids, RunStatus.QUEUED)
    return Overview(overviews, running, queued, running_count, queued_count)


def _active(project_ids: list[int], status: RunStatus) -> tuple[list[Run], int]:
    query = select(Run).where(Run.project_id.in_(project_ids), Run.status == status)
    runs = db.session.scalars(query.order_by(Run.queued_at).limit(ACTIVE_SHOWN)).all()
    count = db.session.scalar(select(func.count()).select_from(query.subquery()))
    return runs, count
