"""Commands that work on the platform in the data folder: serve, worker, project, trigger.

Heavy imports stay inside the commands, so `deno-ci run` and `validate` start fast.
"""

import os
import secrets
import signal
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click

from app.cli import main
from config import SERVED_URL_FILE, Config, data_dir

ROOT = Path(__file__).resolve().parents[2]


def _services():
    from app.embedded import EmbeddedServerError, Services

    config = Config()
    services = Services(Path(config.DATA_DIR), config.DATABASE_URL, config.REDIS_URL)
    try:
        services.start()
    except EmbeddedServerError as error:
        raise click.ClickException(str(error)) from error
    services.export()
    return services


def _migrate(app) -> None:
    from flask_migrate import upgrade
    from sqlalchemy.exc import OperationalError

    try:
        upgrade(directory=str(ROOT / "migrations"))
    except OperationalError as error:
        raise click.ClickException(
            f"Cannot reach PostgreSQL at {app.config['DATABASE_URL'].split('@')[-1]}: {error.orig}. "
            "Start it, or unset DATABASE_URL to use the embedded server."
        ) from error


def _log_lifecycle() -> None:
    import logging

    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)


@contextmanager
def platform_app(serving: bool = False):
    """Start the servers this command needs (stopping afterwards only what it started) and push an app context.

    `serving` is for `serve`, which holds the data folder's lock: it also stops embedded
    servers that were running already, which a killed serve left behind.
    """
    from app.factory import create_app

    services = _services()
    if serving:
        services.adopt_running()
    try:
        app = create_app()
        app.extensions["embedded_services"] = services
        with app.app_context():
            _migrate(app)
            yield app
    finally:
        services.stop_started()


def ensure_first_admin() -> tuple[str, str | None]:
    """Create the administrator `admin` with a random password if there is no user; return (name, password or None)."""
    from app.auth.passwords import hash_password
    from app.extensions import db
    from app.models import User

    existing = db.session.scalar(db.select(User).order_by(User.id).limit(1))
    if existing is not None:
        return existing.username, None
    password = secrets.token_urlsafe(12)
    db.session.add(User(username="admin", password_hash=hash_password(password), is_admin=True))
    db.session.commit()
    return "admin", password


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the web server listens on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port the web server listens on.")
@click.option("--workers", type=int, help="Number of RQ worker processes [default: DENO_CI_WORKERS or 2].")
def serve(host: str, port: int, workers: int | None) -> None:
    """Start the web server, the workers and the scheduler, with embedded PostgreSQL and Redis when no URLs are set."""
    from app.supervisor import Supervisor

    from app import serve_lock

    _log_lifecycle()
    folder = Path(Config().DATA_DIR)
    try:
        # Held until this process ends; the kernel releases it even after a SIGKILL.
        lock = serve_lock.hold(folder)
    except serve_lock.DataFolderServed as error:
        raise click.ClickException(str(error)) from None
    _check_port_free(host, port)
    # Links printed and sent to forges must name the port actually served, also when other
    # commands (project add, trigger) print them: they read it from the data folder.
    os.environ.setdefault("DENO_CI_BASE_URL", f"http://{host}:{port}")
    (folder / SERVED_URL_FILE).write_text(os.environ["DENO_CI_BASE_URL"] + "\n")
    with lock, platform_app(serving=True) as app:
        user, password = ensure_first_admin()
        url = f"http://{host}:{port}/"
        click.echo(f"Deno CI is starting on {url}")
        if password:
            click.echo(f"Sign in as {user!r} with password {password!r} (shown once; change it after signing in).")
        else:
            click.echo(f"Sign in with an existing account (for example {user!r}).")
        Supervisor(app, host, port, workers or app.config["WORKERS"]).run()


def _check_port_free(host: str, port: int) -> None:
    """Stop with a message when another program listens on `host`:`port` already."""
    import socket

    try:
        socket.create_server((host, port)).close()
    except OSError as error:
        raise click.ClickException(f"Cannot serve on {host}:{port}: {error.strerror}. Another program listens there; "
                                   "stop it, or choose another port with --port.") from None


@main.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty (for tests and benchmarks).")
def worker(burst: bool) -> None:
    """Run one RQ worker that executes stages (`serve` starts these for you)."""
    from jobs.worker import PlatformWorker

    from app.queue import notify_queue, redis_connection, run_queue
    from jobs import workspaces_root
    from jobs.removal import remove_leftovers, wait_for_removals
    from jobs.tasks import get_app

    _log_lifecycle()
    _services()
    app = get_app()
    workspaces_root.prepare(Path(app.config["WORKSPACES_DIR"]))
    remove_leftovers(Path(app.config["WORKSPACES_DIR"]))
    _warm_up_executor(app.config["EXECUTOR"])
    with app.app_context():
        connection = redis_connection()
        # A SimpleWorker runs jobs in this process: no fork per stage, one database pool per worker.
        # Stage jobs come first; notification jobs are taken when no stage job waits.
        queues = [run_queue(connection), notify_queue(connection)]
        PlatformWorker(queues, connection=connection).work(burst=burst, logging_level="WARNING")
    # Folders of ended stages still being deleted would otherwise stay until the scheduler's sweep.
    wait_for_removals(timeout=10)


def _warm_up_executor(name: str) -> None:
    """Let the executor prepare what its sandboxes need now, so that the worker's first stage starts as fast as later ones."""
    from jobs.executor import ExecutorError, get_executor

    if name != "bubblewrap":
        # The only executor that prepares anything ahead. The docker one would connect to its engine for nothing.
        return
    try:
        executor = get_executor(name)
    except (ExecutorError, ValueError):
        # The first stage reports it, with its run.
        return
    if warm_up := getattr(executor, "warm_up", None):
        warm_up()


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    with platform_app():
        click.echo("database is up to date")


@main.group()
def project() -> None:
    """Add and list projects."""


@project.command("add")
@click.argument("name")
@click.option("--repo", "clone_url", required=True, help="Clone URL or local path of the git repository.")
@click.option("--branch", "default_branch", default="main", show_default=True, help="Default branch.")
@click.option("--pipeline", "pipeline_path", default="deno-pipeline.ts", show_default=True, help="Pipeline file in the repository.")
@click.option("--forge", type=click.Choice(["github", "gitlab", "bitbucket"]),
              help="Forge that sends the repository's webhooks.")
@click.option("--forge-repo", help="Repository on the forge as OWNER/NAME; deliveries from other repositories are rejected.")
@click.option("--webhook-secret", help="Webhook secret to use [default: a new random one, printed].")
def project_add(name: str, clone_url: str, default_branch: str, pipeline_path: str, forge: str | None,
                forge_repo: str | None, webhook_secret: str | None) -> None:
    """Connect a repository as project NAME; with --forge, print the webhook address and secret to paste into the forge."""
    from app.extensions import db
    from app.forges.accounts import webhook_url
    from app.forges.crypto import encrypt, generate_secret
    from app.projects import ProjectError, add_project, check_local_repository, check_outside_data_folder

    if (forge_repo or webhook_secret) and not forge:
        raise click.UsageError("--forge-repo and --webhook-secret need --forge.")
    if forge and not forge_repo:
        raise click.UsageError("--forge needs --forge-repo OWNER/NAME.")
    if forge_repo and "/" not in forge_repo.strip("/"):
        raise click.UsageError(f"--forge-repo {forge_repo!r} is invalid: expected OWNER/NAME.")
    if not clone_url.strip():
        raise click.UsageError("--repo is empty: give the repository's URL or path.")
    if Path(clone_url).exists():
        clone_url = str(Path(clone_url).resolve())
    with platform_app() as app:
        try:
            check_outside_data_folder(clone_url, Path(app.config["DATA_DIR"]))
            check_local_repository(clone_url)
            added = add_project(name, clone_url, default_branch, pipeline_path, forge=forge or "git", forge_repo=forge_repo)
        except ProjectError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"Added project {added.name!r} ({added.clone_url}, branch {added.default_branch})")
        if forge:
            secret = webhook_secret or generate_secret()
            added.webhook_secret_encrypted = encrypt(secret)
            db.session.commit()
            click.echo(f"Webhook URL:    {webhook_url(app.config['BASE_URL'], forge, added.name)}")
            click.echo(f"Webhook secret: {secret}")
            click.echo("Content type:   application/json; events: pushes, tags and pull (merge) requests")


@project.command("list")
def project_list() -> None:
    """List the projects."""
    from app.extensions import db
    from app.models import Project

    with platform_app():
        for item in db.session.scalars(db.select(Project).order_by(Project.name)):
            click.echo(f"{item.name}\t{item.clone_url}\t{item.default_branch}")


@main.command()
@click.argument("name")
@click.option("--branch", help="Branch to run (default: the project's default branch).")
@click.option("--commit", help="Commit id to run.")
@click.option("--wait", is_flag=True, help="Follow the log and exit 0 only if the run succeeds.")
def trigger(name: str, branch: str | None, commit: str | None, wait: bool) -> None:
    """Start a run of project NAME, as a push to the branch would."""
    if branch and commit:
        raise click.UsageError("Give --branch or --commit, not both.")
    with ExitStack() as stack:
        try:
            from app.extensions import db
            from app.forges.fields import COMMIT_ID, ref_name_problem
            from app.models import Project
            from app.runs.events import make_event
            from app.runs.service import RunError, create_run

            if branch and (problem := ref_name_problem(branch)):
                raise click.UsageError(f"--branch {branch!r} is not a valid Git branch name: {problem}.")
            if commit and not COMMIT_ID.fullmatch(commit):
                raise click.UsageError(f"--commit {commit!r} is not a commit id: expected 4 to 64 hexadecimal digits.")
            _require_serve()
            app = stack.enter_context(platform_app())
        except KeyboardInterrupt:
            # Ctrl-C while the platform's code loads, before any run exists.
            click.echo("Cancelled before the run was created.", err=True)
            sys.exit(130)
        found = db.session.scalar(db.select(Project).where(Project.name == name))
        if found is None:
            raise click.ClickException(f"Project {name!r} not found. List projects with `deno-ci project list`.")
        event = make_event("manual" if commit else "push", branch=branch or (None if commit else found.default_branch), commit=commit)
        try:
            run = create_run(found, trigger="cli", event=event)
        except RunError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"Run #{run.number} of {name!r} queued: {app.config['BASE_URL']}/runs/{run.id}")
        if wait:
            _warn_without_workers()
            # Ctrl-C stops following the run, not the run itself. A flag, not KeyboardInterrupt,
            # so that the signal never lands in the middle of a database call.
            interrupted = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: interrupted.set())
            status = follow_run(run.id, interrupted)
            if status is None:
                click.echo(f"\nStopped following run #{run.number}; it goes on. Cancel it on its page or with "
                           f"POST /api/v1/runs/{run.id}/cancel.", err=True)
                sys.exit(130)
            sys.exit(0 if status == "success" else 1)


def _require_serve() -> None:
    """Stop with a message when the platform uses embedded servers and no `serve` runs: no worker would run the run."""
    from app import serve_lock

    # Read without Config(), which would create the data folder and its secret key for a platform that is not there.
    folder = data_dir()
    if not os.environ.get("DATABASE_URL") and not os.environ.get("REDIS_URL") and not serve_lock.is_served(folder):
        raise click.ClickException(f"The platform is not running on the data folder {folder}: start it with "
                                   "`deno-ci serve` in another terminal, then trigger again.")


def _warn_without_workers() -> None:
    import redis
    from rq import Worker

    from app.queue import redis_connection

    try:
        if not Worker.all(connection=redis_connection()):
            click.echo("No worker is running, so the run waits in the queue: start `deno-ci serve` in another terminal.", err=True)
    except redis.RedisError:
        pass


def follow_run(run_id: int, interrupted: threading.Event | None = None) -> str | None:
    """Print a run's log as it grows until the run ends; return its status, or None once `interrupted` is set."""
    from app.extensions import db
    from app.models import Run, Stage
    from app.status import TERMINAL_RUN
    from app.cli.terminal import printable
    from app.runs.logs import read_lines

    after = 0
    names: dict[int, str] = {}
    while interrupted is None or not interrupted.is_set():
        run = db.session.get(Run, run_id, populate_existing=True)
        ended = run.status in TERMINAL_RUN
        lines = read_lines(db.engine, run_id, after)
        for line in lines:
            if line["stage_id"] is not None and line["stage_id"] not in names:
                names[line["stage_id"]] = db.session.get(Stage, line["stage_id"]).name
            click.echo(f"[{printable(names.get(line['stage_id'], 'run'))}] {printable(line['text'])}")
            after = line["seq"]
        db.session.commit()
        if ended and not lines:
            reason = f": {run.status_reason}" if run.status_reason else ""
            click.echo(f"run #{run.number} {run.status}{reason}")
            return run.status
        if not lines:
            time.sleep(0.2)
    return None
