"""The portal: symposium registration, working groups, mailing lists and guideline releases."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from flask import Config as FlaskConfig, Flask, g, request, session
from flask_babel import get_locale

from config import CONFIGS, Config, ConfigurationError, check_production

ROOT = Path(__file__).resolve().parent.parent

#: Feature areas, each a package with a blueprint `bp`.
AREAS = (
    "public", "auth", "admin", "people", "events", "groups", "lists",
    "guidelines", "mail", "scheduler", "api",
)


def create_app(config: type[Config] | dict[str, Any] | str | None = None) -> Flask:
    """Build the application.

    `config` is a config class, a mapping of overrides on top of the environment's class, or
    the name of one ("development", "testing", "production"); by default `PORTAL_ENV`.
    """
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=os.environ.get("PORTAL_INSTANCE_PATH", str(ROOT / "instance")),
    )
    _load_config(app.config, config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    _configure_logging(app)
    from portal.core.web import BoundedIntegerConverter, PathTextConverter

    app.url_map.converters["int"] = BoundedIntegerConverter
    app.url_map.converters["default"] = app.url_map.converters["string"] = PathTextConverter
    _init_extensions(app)
    # The portal's own hooks first: whether a request's transaction begins as a writer must
    # be set before any blueprint's hook reads (the login-session check does), or on SQLite a
    # signed-in POST would start as a reader and could fail to become a writer.
    _register_request_hooks(app)
    _register_blueprints(app)

    from portal.core.pages import register_error_pages

    register_error_pages(app)
    from portal.admin.demo import register_demo_command

    register_demo_command(app)
    from portal.admin.devserver import register_dev_command

    register_dev_command(app)
    return app


def check_configuration(config: type[Config] | dict[str, Any] | str | None = None) -> None:
    """Raise ConfigurationError if `create_app(config)` would refuse to start, without
    building the app: gunicorn's master runs this once (gunicorn.conf.py), since it would
    otherwise respawn workers that each refuse, forever."""
    _load_config(FlaskConfig(str(ROOT)), config)


def _load_config(settings: FlaskConfig, config: type[Config] | dict[str, Any] | str | None) -> None:
    """Fill an app's settings as `create_app` documents; ConfigurationError if they cannot
    run safely."""
    env_name = os.environ.get("PORTAL_ENV", "development")
    if isinstance(config, str):
        env_name, config = config, None
    if env_name not in CONFIGS:
        # A typo ("prod") must not quietly give the development profile: its public key,
        # cookies without Secure, no HSTS.
        raise ConfigurationError(f"PORTAL_ENV must be one of {', '.join(CONFIGS)}; it is {env_name!r}.")
    settings.from_object(CONFIGS[env_name])
    if isinstance(config, type):
        settings.from_object(config)
    elif isinstance(config, dict):
        settings.update(config)
    settings["PORTAL_ENV"] = env_name
    if env_name == "production":
        check_production(settings)


def _configure_logging(app: Flask) -> None:
    from portal.core.logging import install_record_masking

    # Every record, whatever logger or handler it passes through (gunicorn's access log
    # included), has tokens and passwords masked when it is made.
    install_record_masking()
    logging.Formatter.converter = time.gmtime  # log times in UTC


def _init_extensions(app: Flask) -> None:
    from portal import models  # noqa: F401  every model registered before anything runs
    from portal.core.db import configure_engine
    from portal.extensions import babel, csrf, db, limiter, login_manager, mail, migrate

    # A failed statement's error (logged with its traceback) names its SQL but not its values:
    # those are names, addresses, message bodies and links with tokens (a review found a
    # failed release notice's INSERT logged with all of them).
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"hide_parameters": True} | dict(
        app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # No statement waits longer than DATABASE_LOCK_TIMEOUT_MS for a row lock (a
        # registration then answers "busy, try again"). Set once per connection, in the
        # start-up packet, rather than by a SET LOCAL round trip in every locking transaction.
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("options", f"-c lock_timeout={int(app.config['DATABASE_LOCK_TIMEOUT_MS'])}")
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options | {"connect_args": connect_args}
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    mail.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_account(account_id: str):
        from portal.auth.services import load_session_account
        from portal.auth.views import SESSION_KEY

        return load_session_account(account_id, session.get(SESSION_KEY))

    # Parsed as a flag in config.py: "0" and "false" once turned it on, as any value did.
    if app.config.get("PORTAL_PROXY_FIX"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]


def _select_locale() -> str | None:
    from flask import current_app, has_request_context

    if not has_request_context():
        return None  # CLI and jobs: the default, unless force_locale says otherwise
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("language")
    if chosen in languages:
        return chosen
    emailed = g.get("portal_person_language")  # core.web.speak_the_language_of
    if emailed in languages:
        return emailed
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def _register_blueprints(app: Flask) -> None:
    import importlib

    for area in AREAS:
        module = importlib.import_module(f"portal.{area}")
        app.register_blueprint(module.bp)


def _register_request_hooks(app: Flask) -> None:
    from portal.core.db import want_write_transaction
    from portal.core.formatting import org_name
    from portal.core.permissions import reads_mail
    from portal.core.security import apply_security_headers

    @app.before_request
    def _writers_take_the_lock_first() -> None:
        # On SQLite a request that may write begins its transaction with BEGIN IMMEDIATE.
        want_write_transaction(request.method not in ("GET", "HEAD", "OPTIONS"))

    @app.after_request
    def _headers(response):
        return apply_security_headers(app, response)

    @app.teardown_request
    def _reset(_exc) -> None:
        want_write_transaction(False)

    @app.context_processor
    def _layout_values() -> dict[str, Any]:
        locale = get_locale()
        language = str(locale) if locale else "en"
        return {
            "current_language": language,
            "org_name": org_name(language),
            "org_contact": app.config["PORTAL_ORG_CONTACT"],
            "org_address": app.config["PORTAL_ORG_ADDRESS"],
            "has_endpoint": lambda name: name in app.view_functions,
            "reads_mail": reads_mail,
        }

    from flask import before_render_template
    from wtforms import Form

    def _mark_pages_with_errors(_sender, template, context, **_extra) -> None:
        # base.html starts the <title> with "Error:" when any form on the page has errors, so
        # a screen-reader user hears at once that the page came back with problems (WCAG
        # 2.4.2, 3.3.1), whichever template and however many forms.
        context.setdefault("page_has_errors", any(isinstance(value, Form) and value.errors
                                                  for value in context.values()))

    before_render_template.connect(_mark_pages_with_errors, app, weak=False)  # a closure: keep it alive

    from portal.core.formatting import register_filters

    register_filters(app)
