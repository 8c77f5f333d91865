from __future__ import annotations

import runpy

import pytest
from flask import request

from config import ConfigurationError, TestingConfig
from portal import ROOT, create_app


def test_security_headers_on_every_page(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "base-uri 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


def test_unknown_url_gets_the_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_oversized_request_gets_413_page(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post("/login", data={"email": "x" * 5000})
    assert response.status_code == 413
    assert "File too large" in response.get_data(as_text=True)


#: What a production start needs besides its secret key.
PRODUCTION = {"PORTAL_BASE_URL": "https://portal.owg.example.ca", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
RANDOM_KEY = "Xk3v9Qp2LmZ8rT5wYb7NcD4hJf6Gs1Ua0Ve_-RtyQw"


@pytest.mark.parametrize("key", [None, "", "dev-only-not-secret-change-me", "short", "a" * 40,
                                 "changemechangemechangemechangeme", "0123456789abcdef" * 3])
def test_production_refuses_a_default_missing_or_made_up_secret_key(monkeypatch, key):
    monkeypatch.setenv("PORTAL_ENV", "production")
    if key is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError) as refused:
        create_app({**PRODUCTION, "SECRET_KEY": key})
    assert "SECRET_KEY" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_production_starts_with_any_randomly_drawn_key_and_an_uppercase_scheme(tmp_path, monkeypatch):
    """Found by review: a rule asking for 16 different characters refused a quarter of
    secrets.token_hex() keys (hex has 16 digits in all)."""
    import secrets

    monkeypatch.setenv("PORTAL_ENV", "production")
    for n, key in enumerate([secrets.token_hex(16) for _ in range(20)] + [secrets.token_hex(), secrets.token_urlsafe(32)]):
        app = create_app({**PRODUCTION, "SECRET_KEY": key, "PORTAL_BASE_URL": "HTTPS://Portal.Example.org/",
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p{n}.db"})
        assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("base_url", [None, "http://127.0.0.1:5000", "http://portal.owg.example.ca"])
def test_production_refuses_email_links_that_are_not_its_https_address(monkeypatch, base_url):
    """Found by an operator pass: following the README, every emailed link pointed at
    http://127.0.0.1:5000."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    settings = {**PRODUCTION, "SECRET_KEY": RANDOM_KEY}
    if base_url is None:
        monkeypatch.delenv("PORTAL_BASE_URL", raising=False)
        settings.pop("PORTAL_BASE_URL")
    else:
        settings["PORTAL_BASE_URL"] = base_url
    with pytest.raises(ConfigurationError) as refused:
        create_app(settings)
    assert "PORTAL_BASE_URL" in str(refused.value)


@pytest.mark.parametrize("profile", ["prod", "Production", " production", ""])
def test_a_mistyped_profile_is_refused_not_taken_for_development(monkeypatch, profile):
    monkeypatch.setenv("PORTAL_ENV", profile)
    with pytest.raises(ConfigurationError) as refused:
        create_app({**PRODUCTION, "SECRET_KEY": RANDOM_KEY})
    assert "PORTAL_ENV" in str(refused.value)


def test_the_demo_data_is_refused_in_production(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    app = create_app({**PRODUCTION, "SECRET_KEY": RANDOM_KEY,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"})
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code != 0 and "Refused with PORTAL_ENV=production" in result.output
    assert "symposium-2014" not in result.output


def test_production_sets_cookie_flags_and_hsts(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    app = create_app({**PRODUCTION, "SECRET_KEY": RANDOM_KEY, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = app.test_client().get("/")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_production_refuses_to_start_without_the_compiled_french_catalogue(tmp_path, monkeypatch):
    """Found by a deployment review: the .mo files are not in git, the README's production
    steps never built them, and French readers got English pages."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    uncompiled = tmp_path / "translations"
    (uncompiled / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (uncompiled / "fr" / "LC_MESSAGES" / "messages.po").write_text('msgid ""\nmsgstr ""\n')
    with pytest.raises(ConfigurationError) as refused:
        create_app({**PRODUCTION, "SECRET_KEY": RANDOM_KEY, "BABEL_TRANSLATION_DIRECTORIES": str(uncompiled)})
    assert "'fr' translations are not compiled" in str(refused.value)
    assert "make translations" in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(("value", "trusted"), [
    ("0", False), ("false", False), ("no", False), ("", False),
    ("1", True), ("true", True), ("True", True), ("yes", True),
])
def test_the_proxy_headers_are_trusted_only_when_portal_proxy_fix_says_yes(monkeypatch, value, trusted):
    """Found by a deployment review: PORTAL_PROXY_FIX=0 or false turned it on, and anyone
    reaching gunicorn could then pick the client address the rate limits count."""
    monkeypatch.setenv("PORTAL_PROXY_FIX", value)
    settings = runpy.run_path(str(ROOT / "config.py"))["Config"]  # as a fresh process reads it
    assert settings.PORTAL_PROXY_FIX is trusted

    app = create_app({**{k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()},
                      "SQLALCHEMY_DATABASE_URI": "sqlite://", "PORTAL_PROXY_FIX": settings.PORTAL_PROXY_FIX})

    @app.get("/seen-as")
    def seen_as() -> str:
        return f"{request.remote_addr} {request.scheme} {request.host}"

    seen = app.test_client().get("/seen-as", headers={
        "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "portal.example.org"})
    if trusted:
        assert seen.text == "203.0.113.9 https portal.example.org"
    else:
        assert seen.text == "127.0.0.1 http localhost"


def test_production_refuses_to_start_on_the_tests_clock(monkeypatch):
    """PORTAL_FAKE_NOW freezes the portal's clock for tests; left set in production, every
    release, reminder, expiry and consent lapse would run by a frozen date."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_FAKE_NOW", "2030-01-01T00:00:00+00:00")
    with pytest.raises(ConfigurationError) as refused:
        create_app({**PRODUCTION, "SECRET_KEY": RANDOM_KEY})
    assert "PORTAL_FAKE_NOW is set" in str(refused.value)
