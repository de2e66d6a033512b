"""The content of a notification, built once when a delivery is planned and stored with it."""

from dataclasses import asdict, dataclass, field, fields

from app.models import Run
from app.notifications.events import EVENT_LABELS, Event


@dataclass
class Message:
    """The content every channel renders: a title, the facts of the run or deployment, and a link."""

    event: str
    title: str
    status: str
    project: str
    url: str
    run_id: int | None = None
    run_number: int | None = None
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    author: str | None = None
    commit_message: str | None = None
    duration_seconds: float | None = None
    reason: str | None = None
    environment: str | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Message":
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    @property
    def short_commit(self) -> str | None:
        return self.commit[:10] if self.commit else None

    @property
    def duration_text(self) -> str | None:
        return format_duration(self.duration_seconds)

    def facts(self) -> list[tuple[str, str]]:
        """Return (label, value) pairs for the fields that are set, in display order."""
        pairs = [
            ("Status", self.status), ("Project", self.project), ("Environment", self.environment),
            ("Branch", self.branch or self.tag), ("Commit", self.short_commit), ("Author", self.author),
            ("Duration", self.duration_text), ("Reason", self.reason),
        ]
        return [(label, str(value)) for label, value in pairs if value]

    def plain_text(self) -> str:
        """Render the message as plain text: the title, one line per fact, the link."""
        lines = [self.title, ""]
        lines += [f"{label}: {value}" for label, value in self.facts()]
        if self.commit_message:
            lines += ["", self.commit_message.splitlines()[0]]
        lines += ["", self.url]
        return "\n".join(lines)


def format_duration(seconds: float | None) -> str | None:
    """Format seconds as "1 h 2 min", "3 min 4 s" or "5 s"."""
    if seconds is None:
        return None
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def run_message(run: Run, event: Event, base_url: str) -> Message:
    """Build the message for one event of a finished run; the link is BASE_URL/runs/<id>."""
    duration = None
    if run.finished_at and (run.started_at or run.queued_at):
        duration = (run.finished_at - (run.started_at or run.queued_at)).total_seconds()
    label = EVENT_LABELS[event].split(" ", 1)[1]
    return Message(
        event=event, title=f"Run #{run.number} of {run.project.name} {label}", status=run.status,
        project=run.project.name, url=f"{base_url.rstrip('/')}/runs/{run.id}", run_id=run.id,
        run_number=run.number, branch=run.branch, tag=run.tag, commit=run.commit_sha, author=run.author,
        commit_message=run.message, duration_seconds=duration, reason=run.status_reason,
    )
