"""Saving the edited pipeline file through a forge's API, for projects connected to GitHub, GitLab or Bitbucket.

The commit is made with the signed-in user's own OAuth token when they signed in with
the project's forge, else with the token of the account that connected the project.
Either way the signed-in user is the commit's author.
"""

import logging

from app.forges import get_forge
from app.forges.accounts import access_token, account_of
from app.forges.base import (FileChange, FileConflictError, Forge, ForgeError, ForgeResponseError,
                             ForgeUnreachableError)
from app.forges.crypto import SecretDecryptionError
from app.extensions import db
from app.models import ForgeAccount, Project, User
from app.pipelines.editor_errors import EditorError, ForgeUnavailableError, SaveConflictError, SaveForbiddenError

log = logging.getLogger(__name__)


def author_email(user: User) -> str:
    """Return the address a commit by `user` carries; users without one get a placeholder address."""
    return user.email or f"{user.username}@deno-ci.local"


def commit_through_forge(project: Project, branch: str, text: str, user: User, message: str,
                         base_commit: str | None) -> str:
    """Commit `text` as the project's pipeline file on `branch` through the forge; return the new commit.

    Raises SaveConflictError when the file (GitHub, GitLab) or the branch (Bitbucket) changed
    since `base_commit`, SaveForbiddenError when the forge refuses the push (HTTP 403),
    ForgeUnavailableError when it cannot be reached or rejects the token, and EditorError
    for any other refusal.
    """
    forge = get_forge(project.forge)
    account = _account_for(project, user)
    token = _token(account, forge)
    change = FileChange(path=project.pipeline_path, content=text, branch=branch, message=message,
                        author_name=user.username, author_email=author_email(user), base_commit=base_commit)
    try:
        commit = forge.commit_file(token, project.forge_repo, change)
    except ForgeError as error:
        log.warning("project %s: saving %s on %s through %s as forge account %s failed: %s",
                    project.id, project.pipeline_path, branch, forge.name, account.id, error)
        raise _editor_error(error, project, branch, forge, account) from error
    log.info("project %s: user %s committed %s on %s through %s as %s",
             project.id, user.id, project.pipeline_path, branch, forge.name, commit)
    return commit


def _account_for(project: Project, user: User) -> ForgeAccount:
    own = account_of(user, project.forge)
    if own is not None:
        return own
    connected = db.session.get(ForgeAccount, project.forge_account_id) if project.forge_account_id else None
    if connected is None:
        raise EditorError(f"Cannot save to {project.forge_repo!r}: you have not signed in with {project.forge} and "
                          f"project {project.name!r} has no forge account to commit with. Sign in with "
                          f"{project.forge} or connect the repository through its sign-in.")
    return connected


def _token(account: ForgeAccount, forge: Forge) -> str:
    try:
        return access_token(account)
    except ForgeUnreachableError as error:
        raise ForgeUnavailableError(f"Cannot refresh the {forge.title} token of {account.login!r}: "
                                    f"{forge.title} is unreachable ({error}). Try again later.") from error
    except (ForgeError, SecretDecryptionError) as error:
        raise ForgeUnavailableError(f"The {forge.title} token of {account.login!r} is unusable: {error}. "
                                    f"Sign in with {forge.title} again.") from error


def _editor_error(error: ForgeError, project: Project, branch: str, forge: Forge, account: ForgeAccount) -> EditorError:
    target = f"{project.pipeline_path} on branch {branch!r} of {project.forge_repo!r}"
    if isinstance(error, FileConflictError):
        return SaveConflictError(f"Cannot save {target}: someone changed it on {forge.title} after you opened it. "
                                 "Copy your text, reload the editor to get their version, and apply your change again.")
    if isinstance(error, ForgeUnreachableError):
        return ForgeUnavailableError(f"Cannot save {target}: {forge.title} is unreachable ({error}). "
                                     "Your text is still in the editor; try again later.")
    if not isinstance(error, ForgeResponseError):
        return EditorError(f"Cannot save {target}: {error}")
    status = error.status_code
    if status == 403:
        return SaveForbiddenError(f"Cannot save {target}: {forge.title} account {account.login!r} may not push to "
                                  f"that branch (HTTP 403). Ask a maintainer of {project.forge_repo!r} for write "
                                  "access, or save to a branch that is not protected.")
    if status == 401:
        return ForgeUnavailableError(f"Cannot save {target}: {forge.title} rejected the token of {account.login!r} "
                                     f"(HTTP 401). Sign in with {forge.title} again.")
    if status == 404:
        return EditorError(f"Cannot save {target}: {forge.title} reports the repository or branch as not found "
                           f"for account {account.login!r} (HTTP 404). Check that the branch exists and that the "
                           "account can see the repository.")
    if status >= 500:
        return ForgeUnavailableError(f"Cannot save {target}: {forge.title} failed with HTTP {status}. "
                                     "Your text is still in the editor; try again later.")
    return EditorError(f"Cannot save {target}: {forge.title} rejected the commit with HTTP {status}: {error.text[:300]}")
