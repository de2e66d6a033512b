"""The Flask application factory."""

from pathlib import Path

from flask import Flask

from app.extensions import csrf, db, login_manager, migrate, sock
from app.errors import register_error_handlers
from app.json_depth import DepthLimitedJSONProvider
from config import Config

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: dict | None = None) -> Flask:
    """Build the web application; `overrides` replaces settings (tests pass theirs here)."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.json = DepthLimitedJSONProvider(app)
    app.config.from_object(Config())
    app.config.update(overrides or {})
    _resolve_service_urls(app)
    proxies = app.config.get("TRUSTED_PROXIES", 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Sign-in limits and the audit log use the client's address, not the proxy's.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "web.login"
    login_manager.unauthorized_handler(_unauthorized)
    csrf.init_app(app)
    sock.init_app(app)
    _register_blueprints(app)
    register_error_handlers(app)
    app.after_request(_security_headers)
    return app


def _security_headers(response):
    # No page of the platform is meant to be framed, sniffed as another type or to leak its address (run ids,
    # project names) to other sites. Scripts get no policy, because Monaco loads its modules and workers at run time.
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _unauthorized():
    from flask import redirect, request, url_for

    from app.errors import error_response, wants_json

    if wants_json():
        return error_response(401, "Unauthorized", "Sign in, or send a valid API token in the Authorization header.")
    return redirect(url_for("web.login", next=request.full_path.rstrip("?")))


def _resolve_service_urls(app: Flask) -> None:
    from app.embedded import Services

    services = Services(Path(app.config["DATA_DIR"]), app.config["DATABASE_URL"], app.config["REDIS_URL"])
    app.config["DATABASE_URL"] = services.database_url
    app.config["REDIS_URL"] = services.redis_url
    app.config["SQLALCHEMY_DATABASE_URI"] = _with_psycopg_driver(services.database_url)


def _with_psycopg_driver(url: str) -> str:
    # Operators paste plain "postgresql://" URLs; SQLAlchemy would pick psycopg2 for those.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _register_blueprints(app: Flask) -> None:
    from app import models  # noqa: F401  (registers the tables with SQLAlchemy)
    from app.admin import admin
    from app.api import api
    from app.hooks import hooks
    from app.web import web
    from app.ws import register_websockets

    app.register_blueprint(api, url_prefix="/api/v1")
    app.register_blueprint(web)
    app.register_blueprint(admin)
    app.register_blueprint(hooks)
    register_websockets(app)
