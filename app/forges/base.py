"""The interface every forge implements, and the values that cross it.

A forge module turns its webhook into one `HookOutcome`, speaks its own OAuth, lists
repositories, creates webhooks and reports commit statuses. Nothing here knows Flask's
request or the database: the hooks blueprint and the run service do that.
"""

import hashlib
import hmac
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# GitHub, GitLab and Bitbucket all honour these two spellings, in any case.
SKIP_CI = re.compile(r"\[(skip ci|ci skip)\]", re.IGNORECASE)
ZERO_SHA = "0" * 40
# An HMAC-SHA256 signature header as GitHub and Bitbucket send it.
SHA256_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")


class ForgeError(Exception):
    """A forge's API answered with an error or could not be reached."""


class ForgeUnreachableError(ForgeError):
    """The forge could not be reached, or the request timed out."""


class ForgeResponseError(ForgeError):
    """The forge returned an HTTP error status; `status_code` and `text` are from its response."""

    def __init__(self, message: str, status_code: int, text: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.text = text


class FileConflictError(ForgeResponseError):
    """A commit was rejected because the file or branch changed since the commit the edit started from."""


class MalformedPayloadError(ValueError):
    """A webhook body is not the JSON object its event must be; the message is a sentence naming the field."""


def header_bytes(value: str) -> bytes:
    """Return a header value as the bytes the client sent.

    WSGI servers decode header values as ISO-8859-1 (PEP 3333), so encoding them back
    gives the original bytes. A value with other characters did not come through WSGI and
    is encoded as UTF-8.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def hmac_signature_problem(header: str, provided: str | None, body: bytes, secret: str) -> str | None:
    """Return None if `provided`, the value of header `header`, is the HMAC-SHA256 of the body, else why not.

    The prefix and the hex digits are compared case-insensitively, as proxies may change
    either. The comparison is of bytes, because hmac.compare_digest raises TypeError for
    strings with non-ASCII characters.
    """
    if not provided:
        return f"The {header} header is missing; give the webhook the project's webhook secret, so the forge signs deliveries."
    normalised = provided.strip().lower()
    if not SHA256_SIGNATURE.fullmatch(normalised):
        return (f"The {header} header is not 'sha256=' followed by 64 hexadecimal digits; give the webhook "
                "the project's webhook secret, so the forge signs deliveries.")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), normalised.encode("ascii")):
        return (f"The {header} signature does not match the body signed with the project's webhook secret; "
                "set the same secret on the forge and in the project.")
    return None


class OutcomeKind(StrEnum):
    RUN = "run"  # start a run for `event`
    NOTHING = "nothing"  # a known event that starts nothing: branch deleted, pull request closed, [skip ci]
    IGNORED = "ignored"  # an event or action the platform does not run pipelines for
    PING = "ping"  # the forge's test delivery after a webhook is created


class CommitState(StrEnum):
    PENDING = "pending"  # the run is queued
    RUNNING = "running"  # a stage has started
    SUCCESS = "success"  # the run succeeded, or its filters selected no stage
    FAILURE = "failure"  # a stage failed
    ERROR = "error"  # the platform could not run the pipeline
    CANCELLED = "cancelled"  # a person or a newer run cancelled it


@dataclass(frozen=True)
class HookOutcome:
    """What a verified delivery asks for: one of the four `OutcomeKind`s.

    `event` is the normalised event (app/runs/events.py) for RUN, and `repository` the
    repository's full name on the forge ("owner/name") wherever the payload has one.
    """

    kind: OutcomeKind
    reason: str
    repository: str | None = None
    event: dict | None = None

    @classmethod
    def run(cls, event: dict, repository: str, reason: str) -> "HookOutcome":
        return cls(OutcomeKind.RUN, reason, repository, event)

    @classmethod
    def nothing(cls, reason: str, repository: str | None = None) -> "HookOutcome":
        return cls(OutcomeKind.NOTHING, reason, repository)

    @classmethod
    def ignored(cls, reason: str, repository: str | None = None) -> "HookOutcome":
        return cls(OutcomeKind.IGNORED, reason, repository)

    @classmethod
    def ping(cls, repository: str | None = None) -> "HookOutcome":
        return cls(OutcomeKind.PING, "ping received; the webhook works", repository)


@dataclass(frozen=True)
class TokenSet:
    """OAuth tokens as a forge issued them; `expires_at` is None for tokens that do not expire."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scopes: str | None = None


@dataclass(frozen=True)
class ForgeUser:
    """The account an access token belongs to."""

    id: str
    login: str
    email: str | None = None


@dataclass(frozen=True)
class Repository:
    """A repository as a forge lists it."""

    full_name: str
    clone_url: str
    default_branch: str
    private: bool = False


@dataclass(frozen=True)
class FileChange:
    """One file to commit on a branch through a forge's API.

    `base_commit` is the commit the new content was edited from. The forge rejects the
    commit when the file (GitHub, GitLab) or the branch (Bitbucket) changed since then;
    None means no such check.
    """

    path: str
    content: str
    branch: str
    message: str
    author_name: str
    author_email: str
    base_commit: str | None = None


@dataclass(frozen=True)
class ForgeSettings:
    """Where a forge lives and which OAuth application the platform is registered as."""

    web_url: str
    api_url: str
    client_id: str = ""
    client_secret: str = ""
    extra: dict = field(default_factory=dict)


class Forge(ABC):
    """One forge: GitHub, GitLab or Bitbucket Cloud (or GitHub Enterprise and self-hosted GitLab).

    Webhook methods are pure: they take the request's headers (lower-case names) and
    body, do no I/O and are safe to call from any thread. API methods make HTTP requests
    with a timeout and raise ForgeError when the forge answers with an error or cannot be
    reached; they never log a token.
    """

    name: str = ""
    title: str = ""
    # Header whose value names the event, such as "x-github-event".
    event_header: str = ""

    def __init__(self, settings: ForgeSettings) -> None:
        self.settings = settings

    # Webhooks

    @abstractmethod
    def verify(self, headers: dict[str, str], body: bytes, secret: str) -> str | None:
        """Check the delivery's signature or token against the project's secret in constant time.

        Returns None when it is valid, else the reason it is not as a sentence ("The
        X-Hub-Signature-256 header is missing; ..."), which the caller returns with status 401.
        Never raises for any header value, non-ASCII ones included.
        """

    @abstractmethod
    def delivery_id(self, headers: dict[str, str]) -> str | None:
        """Return the forge's id of this delivery, the same on a redelivery, or None if it sent none."""

    @abstractmethod
    def parse(self, headers: dict[str, str], payload: dict) -> HookOutcome:
        """Turn a verified delivery into a HookOutcome.

        A push to a branch, a tag push, a pull request opened, updated with new commits,
        reopened or merged gives RUN with the normalised event. A deleted branch or tag, a
        pull request closed without merging and `[skip ci]` in the head commit message give
        NOTHING with the reason. Events and actions the platform does not run give IGNORED,
        and the forge's test event gives PING. Raises MalformedPayloadError when a field the
        event needs is missing or has the wrong type.
        """

    # OAuth

    @abstractmethod
    def authorize_url(self, redirect_uri: str, state: str, code_challenge: str) -> str:
        """Return the forge's address where the user grants access (authorization code flow with PKCE S256)."""

    @abstractmethod
    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Exchange an authorization code for tokens."""

    @abstractmethod
    def refresh(self, refresh_token: str) -> TokenSet:
        """Exchange a refresh token for new tokens; forges that issue none raise ForgeError."""

    @abstractmethod
    def current_user(self, token: str) -> ForgeUser:
        """Return the account that `token` belongs to."""

    # Repositories

    @abstractmethod
    def admin_repositories(self, token: str) -> list[Repository]:
        """List the repositories on which the token's user may create webhooks, following every page."""

    @abstractmethod
    def create_webhook(self, token: str, repository: str, url: str, secret: str) -> str:
        """Create a webhook on `repository` for pushes, tags and pull requests; return the forge's hook id."""

    @abstractmethod
    def report_status(self, token: str, repository: str, sha: str, state: CommitState, *,
                      target_url: str, description: str, context: str, ref: str | None = None) -> None:
        """Set the commit status named `context` on commit `sha`, replacing an earlier one of that name."""

    @abstractmethod
    def commit_file(self, token: str, repository: str, change: FileChange) -> str:
        """Commit `change.content` as `change.path` on `change.branch` and return the new commit's id.

        The commit's author is `change.author_name` and `change.author_email`; its committer is
        the token's account. Raises FileConflictError when the forge reports that the file or
        branch moved on since `change.base_commit`, ForgeResponseError for any other refusal
        (403 when the token's account may not push to the branch) and ForgeUnreachableError
        when the forge cannot be reached.
        """

    @abstractmethod
    def clone_url(self, repository: str, token: str | None = None) -> str:
        """Return the HTTPS clone address, with the token as credentials when given.

        The address with a token goes only to the mirror fetch's command line, never to
        a log, a stored row or a workspace's git config.
        """


def is_skip_ci(message: str | None) -> bool:
    """Tell whether a commit message asks for no CI run."""
    return bool(message and SKIP_CI.search(message))


def short_reason(message: str) -> str:
    """Return the first line of a commit message, for a reason sentence."""
    return (message or "").strip().splitlines()[0][:100] if (message or "").strip() else ""
