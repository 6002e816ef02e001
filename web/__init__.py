"""The paperfeed web app: a thin Flask client of :mod:`recommender`."""

from __future__ import annotations

from flask import Flask
from threadpoolctl import threadpool_limits
from werkzeug.middleware.proxy_fix import ProxyFix

from recommender.config import ConfigError, load_settings
from recommender.dumps import strip_unrenderable
from recommender.feed import FeedService

from .cards import CardCache
from .sessions import HourlyRefreshSessionInterface

__all__ = ["ConfigError", "create_app", "warm_up"]


def _is_http_url(value: object) -> bool:
    """Jinja test: only http(s) links are rendered (a dump could carry ``javascript:``)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def _renderable(value: object) -> object:
    """Jinja finalize: plain text loses NUL and control characters (markup passes as is)."""
    return strip_unrenderable(value) if type(value) is str else value


#: Every response's security headers. A few constant lines here rather than
#: Flask-Talisman: the pages have no inline script or style (tests/web check), so no
#: nonces are needed and the policy is one fixed string; Talisman would add a dependency
#: whose other features (forcing HTTPS redirects, rewriting cookie flags) clash with the
#: settings this factory already makes, and with TLS ended at a reverse proxy.
#: Referrer-Policy "same-origin": a link out of a page whose URL holds a token (reset,
#: confirm, digest links) sends no Referer to another site, while same-origin form posts
#: keep theirs, which Flask-WTF's CSRF check requires over HTTPS.
SECURITY_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    ),
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
#: Production only: browsers then refuse plain http for a year.
HSTS = "max-age=31536000"


#: Where the sources' thumbnails are, allowed in img-src only with PAPERFEED_REMOTE_IMAGES.
THUMBNAIL_HOSTS = "https://cdn-thumbnails.huggingface.co"


def _security_headers(production: bool, remote_images: bool = False):
    headers = {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if production else {})}
    if remote_images:
        headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
            "img-src 'self' data:", f"img-src 'self' data: {THUMBNAIL_HOSTS}"
        )

    def add(response):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    return add


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory. ``test_config`` overrides settings (tests pass DATA_DIR)."""
    app = Flask(__name__)
    app.session_interface = HourlyRefreshSessionInterface()
    test_config = test_config or {}
    settings = load_settings(test_config.get("DATA_DIR"))
    production = settings.production
    app.config.update(
        DATA_DIR=str(settings.data_dir),
        PRODUCTION=production,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        # fetch() sends the token in this header; forms send the csrf_token field.
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        # Tokens live as long as the session: a feed left open for a day still works.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.secret_key()
    app.extensions["paperfeed.settings"] = settings
    # The serving state of this data dir: the published bundle and the memos over it.
    # Workers keep answering from the old bundle while a newly published one loads.
    app.extensions["paperfeed.feeds"] = FeedService(settings, background_reload=True)
    app.after_request(_security_headers(production, settings.remote_images))
    app.jinja_env.globals["remote_images"] = settings.remote_images
    app.jinja_env.tests["http_url"] = _is_http_url
    app.jinja_env.tests["flash_of"] = _flash_of
    app.jinja_env.finalize = _renderable
    app.jinja_env.globals["paper_cards"] = CardCache()
    if hops := settings.proxy_hops:
        # Behind a reverse proxy the client's address (login and reset rate limits) and the
        # scheme come from X-Forwarded-*; trusted only for the configured number of hops.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    # A request's matrix products are small; BLAS threads would only fight the other
    # workers for the cores (on 2 cores a 1 ms solve took 50 ms under load).
    threadpool_limits(limits=1, user_api="blas")

    from . import (
        atom,
        auth,
        db,
        email_links,
        errors,
        feed,
        follows,
        health,
        interests,
        onboarding,
        papers,
        search,
        trending,
    )
    from . import settings as settings_views
    from .extensions import csrf

    csrf.init_app(app)
    db.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    for blueprint in (
        health.bp,
        auth.bp,
        feed.bp,
        onboarding.bp,
        search.bp,
        trending.bp,
        papers.bp,
        follows.bp,
        settings_views.bp,
        interests.bp,
        atom.bp,
        email_links.bp,
    ):
        app.register_blueprint(blueprint)
    return app


def warm_up(app: Flask) -> str | None:
    """Load the published model now instead of in the first request (never fits one);
    return its version, None before the first fit."""
    bundle = app.extensions["paperfeed.feeds"].bundle()
    return bundle.name if bundle is not None else None


def _flash_of(message: tuple[str, str], section: str = "") -> bool:
    """Whether a flashed ``(category, text)`` belongs to ``section`` (its category ends
    in ``@section``: shown inside the section a redirect scrolls to), or to the page."""
    return message[0].partition("@")[2] == section
