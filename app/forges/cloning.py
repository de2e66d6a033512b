"""What the worker's mirror fetch needs from the forge: the address with a token, and a pull request's ref."""

import logging

from app.extensions import db
from app.forges import FORGES, get_forge
from app.forges.base import ForgeError
from app.forges.crypto import SecretDecryptionError
from app.models import ForgeAccount, Run

log = logging.getLogger(__name__)


def mirror_options(run: Run) -> dict:
    """Return keyword arguments for `jobs.workspace.update_mirror` for this run.

    `fetch_url` carries the connected account's token, for private repositories; it is
    passed on git's command line only and never logged. `extra_ref` is the event's
    `fetchRef`, for a pull request from a fork.
    """
    project, options = run.project, {}
    if project.forge in FORGES and project.forge_repo and project.forge_account_id:
        options["fetch_url"] = _authenticated_url(run)
    fetch = (run.event_data or {}).get("fetchRef")
    if isinstance(fetch, dict) and fetch.get("ref"):
        repository = fetch.get("repository")
        url = get_forge(project.forge).clone_url(repository) if repository and project.forge in FORGES else None
        options["extra_ref"] = {"ref": fetch["ref"], "url": url}
    return {key: value for key, value in options.items() if value}


def _authenticated_url(run: Run) -> str | None:
    from app.forges.accounts import access_token

    project = run.project
    try:
        token = access_token(db.session.get(ForgeAccount, project.forge_account_id))
    except (ForgeError, SecretDecryptionError) as error:
        log.warning("run %s: fetching without credentials, the forge token is unusable: %s", run.id, error)
        return None
    return get_forge(project.forge).clone_url(project.forge_repo, token)
