"""Settings for the web app, the workers and the CLI, read from the environment.

Every setting has an environment variable; the CLI's `--data` option sets
`DENO_CI_DATA` for the process and for everything it starts.
"""

import os
import secrets
from pathlib import Path


# Deno requires --allow-all to read any path under /dev, so a stage could not read a
# workspace there, nor the planner its event file.
DEVICE_TREE = Path("/dev")


def data_dir() -> Path:
    """Return the data folder: `DENO_CI_DATA`, or `./var` under the working directory."""
    return Path(os.environ.get("DENO_CI_DATA", "var")).resolve()


def under_device_tree(path: Path) -> bool:
    """Return whether `path` (resolved) lies under /dev, where Deno reads nothing without --allow-all."""
    resolved = path.resolve()
    return resolved == DEVICE_TREE or DEVICE_TREE in resolved.parents


def _secret_key(folder: Path) -> str:
    # A generated key is stored so that sessions and encrypted values survive a restart.
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = folder / "secret_key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


FORGE_DEFAULTS = {
    "github": ("https://github.com", "https://api.github.com"),
    "gitlab": ("https://gitlab.com", None),
    "bitbucket": ("https://bitbucket.org", "https://api.bitbucket.org/2.0"),
}


def _forge_settings(name: str, web_url: str, api_url: str | None) -> dict:
    # DENO_CI_GITHUB_URL, DENO_CI_GITHUB_API_URL, DENO_CI_GITHUB_CLIENT_ID, DENO_CI_GITHUB_CLIENT_SECRET, and so on.
    prefix = f"DENO_CI_{name.upper()}_"
    web = os.environ.get(prefix + "URL", web_url).rstrip("/")
    return {
        "web_url": web,
        # GitLab's API lives under its web address, so a self-hosted GitLab needs only DENO_CI_GITLAB_URL.
        "api_url": os.environ.get(prefix + "API_URL", api_url or f"{web}/api/v4").rstrip("/"),
        "client_id": os.environ.get(prefix + "CLIENT_ID", ""),
        "client_secret": os.environ.get(prefix + "CLIENT_SECRET", ""),
    }


SERVED_URL_FILE = "served-url"


def _served_url(folder: Path) -> str | None:
    """Return the address `deno-ci serve` last served this data folder on, so other commands print the same links."""
    try:
        return (folder / SERVED_URL_FILE).read_text().strip() or None
    except OSError:
        return None


class Config:
    """Settings as attributes, so that Flask's `app.config.from_object` takes them."""

    def __init__(self) -> None:
        folder = data_dir()
        self.DATA_DIR = str(folder)
        # Where workers make stages' workspaces and dependency caches, made and deleted for
        # every stage: a tmpfs here makes stages start sooner (docs/architecture.md).
        self.WORKSPACES_DIR = str(Path(os.environ.get("DENO_CI_WORKSPACES") or folder / "workspaces").resolve())
        self.SECRET_KEY = _secret_key(folder)
        # Key material for project secrets at rest; empty means "derive it from SECRET_KEY".
        self.SECRETS_KEY = os.environ.get("DENO_CI_SECRETS_KEY", "")
        # Empty means "start the embedded server under the data folder".
        self.DATABASE_URL = os.environ.get("DATABASE_URL", "")
        self.REDIS_URL = os.environ.get("REDIS_URL", "")
        self.SQLALCHEMY_DATABASE_URI = self.DATABASE_URL
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        # Number of RQ worker processes `deno-ci serve` starts.
        self.WORKERS = int(os.environ.get("DENO_CI_WORKERS", "2"))
        # Stage executor: "bubblewrap" (default), "docker" or "unsandboxed" (local development only).
        self.EXECUTOR = os.environ.get("DENO_CI_EXECUTOR", "bubblewrap")
        # Public address of the web UI, used in links sent to forges and people.
        self.BASE_URL = os.environ.get("DENO_CI_BASE_URL") or _served_url(folder) or "http://127.0.0.1:8000"
        # Reverse proxies in front of the web server (nginx, a load balancer) whose X-Forwarded-For,
        # -Proto and -Host headers are trusted; 0 trusts none, so clients cannot fake their address.
        self.TRUSTED_PROXIES = int(os.environ.get("DENO_CI_TRUSTED_PROXIES", "0"))
        # Days a run's artifacts are kept before the scheduler deletes them.
        self.ARTIFACT_RETENTION_DAYS = int(os.environ.get("DENO_CI_ARTIFACT_RETENTION_DAYS", "30"))
        # Seconds without a heartbeat after which a running stage counts as lost with its worker.
        self.STAGE_HEARTBEAT_TIMEOUT = float(os.environ.get("DENO_CI_STAGE_HEARTBEAT_TIMEOUT", "15"))
        # Default wall-clock limit of a stage in seconds when the pipeline sets none.
        self.STAGE_TIMEOUT = float(os.environ.get("DENO_CI_STAGE_TIMEOUT", "3600"))
        # Bytes a stage may write to its /tmp, which is kept in memory; the workspace is on disk.
        self.STAGE_TMP_BYTES = int(os.environ.get("DENO_CI_STAGE_TMP_BYTES", str(1024 * 1024 * 1024)))
        # Bytes of memory all processes of a stage, or of one planning of a pipeline, may use together.
        self.STAGE_MEMORY_BYTES = int(os.environ.get("DENO_CI_STAGE_MEMORY_BYTES", str(4 * 1024 * 1024 * 1024)))
        # Processes (threads included) that a stage may have at once; a fork beyond it fails.
        self.STAGE_MAX_PROCESSES = int(os.environ.get("DENO_CI_STAGE_MAX_PROCESSES", "512"))
        # Bytes of stdout and stderr a stage may write before its log is cut off.
        self.STAGE_MAX_OUTPUT = int(os.environ.get("DENO_CI_STAGE_MAX_OUTPUT", str(50 * 1024 * 1024)))
        # Bytes a webhook body may have; GitHub sends up to 25 MB, but no push or pull request event needs that.
        self.WEBHOOK_MAX_BYTES = int(os.environ.get("DENO_CI_WEBHOOK_MAX_BYTES", str(5 * 1024 * 1024)))
        # Web and API addresses and OAuth application of each forge; point them at GitHub
        # Enterprise or a self-hosted GitLab, or at a test server.
        self.FORGES = {name: _forge_settings(name, web, api) for name, (web, api) in FORGE_DEFAULTS.items()}
        # Notifications: seconds one send may take, attempts per delivery, first retry delay (doubled each time).
        self.NOTIFY_TIMEOUT = float(os.environ.get("DENO_CI_NOTIFY_TIMEOUT", "10"))
        self.NOTIFY_MAX_ATTEMPTS = int(os.environ.get("DENO_CI_NOTIFY_MAX_ATTEMPTS", "5"))
        self.NOTIFY_RETRY_BASE_SECONDS = float(os.environ.get("DENO_CI_NOTIFY_RETRY_BASE_SECONDS", "30"))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.BASE_URL.startswith("https://")
