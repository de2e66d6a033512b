"""Source control forges behind one interface (`base.Forge`): GitHub, GitLab and Bitbucket Cloud.

Each forge is one folder with the same three modules: `webhook.py` (signature check and
dispatch), `convert.py` (payload to normalised event, pure functions) and `client.py`
(OAuth and REST API). Adding a forge is adding a folder and a line in FORGES.
"""

from flask import current_app

from app.forges.base import Forge, ForgeSettings
from app.forges.bitbucket import Bitbucket
from app.forges.github import GitHub
from app.forges.gitlab import GitLab

FORGES: dict[str, type[Forge]] = {"github": GitHub, "gitlab": GitLab, "bitbucket": Bitbucket}


class UnknownForgeError(LookupError):
    """No forge has the requested name."""


def get_forge(name: str, settings: dict | None = None) -> Forge:
    """Return the forge `name`, configured from `settings` or from the app's FORGES setting."""
    if name not in FORGES:
        raise UnknownForgeError(f"Forge {name!r} is unknown: expected one of {', '.join(FORGES)}")
    values = settings if settings is not None else current_app.config["FORGES"][name]
    return FORGES[name](ForgeSettings(**{key: values.get(key, "") for key in ("web_url", "api_url", "client_id", "client_secret")}))
