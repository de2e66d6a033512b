"""The editor's errors, each with the HTTP status of its JSON response."""


class EditorError(Exception):
    """The editor cannot do what was asked; the message says why and what to do."""

    status = 422


class SaveConflictError(EditorError):
    """Someone changed the pipeline file on the branch after the editor loaded it."""

    status = 409


class SaveForbiddenError(EditorError):
    """The commit was refused: the user, or the forge account whose token was used, may not write to the branch."""

    status = 403


class ForgeUnavailableError(EditorError):
    """The forge could not be reached, failed with a server error, or rejected the platform's token."""

    status = 502
