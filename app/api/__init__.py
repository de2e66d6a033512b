"""The REST API under /api/v1 (JSON).

Requests authenticate with `Authorization: Bearer <token>` or with the session
cookie of a signed-in user. Bearer requests are exempt from CSRF checks (a
browser never adds that header by itself); cookie-authenticated writes need the
CSRF token in the `X-CSRFToken` header, like the HTMX requests of the pages.
"""

from flask import Blueprint, current_app, g, request
from flask_login import current_user

from app.auth.tokens import TokenError, authenticate
from app.extensions import csrf

api = Blueprint("api", __name__)
csrf.exempt(api)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@api.before_request
def authenticate_request():
    """Sign the request in by its bearer token, or check CSRF on cookie-authenticated writes."""
    from app.errors import error_response

    header = request.headers.get("Authorization")
    if header:
        try:
            token = authenticate(header)
        except TokenError as error:
            response, status = error_response(401, "Unauthorized", str(error))
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response, status
        g.api_token = token
        # Flask-Login reads the request's user from here; the session is left untouched.
        g._login_user = token.user
        return None
    # Anonymous writes go on to the view, which returns 401. Signed-in ones must carry the CSRF token.
    if request.method not in SAFE_METHODS and current_app.config["WTF_CSRF_ENABLED"] and current_user.is_authenticated:
        csrf.protect()
    return None


from app.api import admin, deployments, forges, openapi, projects, runs, tokens  # noqa: E402,F401


@api.before_request
def reject_deep_json():
    """Reject a JSON body nested deeper than MAX_JSON_DEPTH with a reason, instead of "not a JSON object"."""
    from app.errors import error_response
    from app.json_depth import MAX_JSON_DEPTH, nests_deeper_than

    if request.is_json and nests_deeper_than(request.get_data(cache=True)):
        return error_response(422, "Unprocessable Entity", f"The JSON body nests objects and arrays more than "
                                                           f"{MAX_JSON_DEPTH} levels deep; send at most {MAX_JSON_DEPTH}.")
    return None
