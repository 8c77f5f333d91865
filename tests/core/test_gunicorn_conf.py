"""gunicorn.conf.py: what the master checks before starting workers, and what every web
worker does once it has loaded the app."""
from __future__ import annotations

import gc
import os
import runpy
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_freezes_what_loading_the_app_made():
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0
    try:
        hooks["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 0  # startup objects are out of the collector's sight
    finally:
        gc.unfreeze()


def _gunicorn(tmp_path: Path, port: int, app: str = "portal:create_app()", **environment: str) -> subprocess.Popen:
    """gunicorn as the README's Production section starts it, with two workers."""
    env = {**os.environ, "PORTAL_ENV": "production", "PORTAL_BASE_URL": "https://portal.example.org",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}", "PORTAL_INSTANCE_PATH": str(tmp_path),
           **environment}
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", app],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(server: subprocess.Popen) -> str:
    server.terminate()
    try:
        output, _ = server.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        output, _ = server.communicate()
    return output


@pytest.mark.slow
@pytest.mark.parametrize("app, profile", [
    ("portal:create_app()", "production"),
    # The profile may be in the app argument rather than PORTAL_ENV: the master checks the
    # app as the workers will build it.
    ('portal:create_app("production")', "development"),
])
def test_gunicorn_stops_with_the_reason_when_production_refuses_its_configuration(tmp_path, app, profile):
    """Found by a deployment review: each worker refused, and gunicorn booted another, forever."""
    server = _gunicorn(tmp_path, free_port(), app=app, SECRET_KEY="short", PORTAL_ENV=profile)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("gunicorn still running 30 s after a refused configuration:\n" + _stop(server))
    output = server.stdout.read()
    server.stdout.close()
    assert server.returncode != 0
    assert "Configuration error: SECRET_KEY is shorter than 32 characters" in output
    assert "Booting worker" not in output  # refused once, by the master


def test_the_master_checks_the_configuration_without_importing_the_portal():
    """A review: imported into gunicorn's master, the portal stayed in its modules, and the
    workers a reload (HUP) forks ran the old code beside the new."""
    probe = ("import runpy, sys; runpy.run_path('gunicorn.conf.py')['on_starting'](None); "
             "print(sorted(name for name in sys.modules if name == 'portal' or name.startswith('portal.')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PORTAL_ENV": "development"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_gunicorn_starts_its_workers_with_a_configuration_production_accepts(tmp_path):
    port = free_port()
    server = _gunicorn(tmp_path, port, SECRET_KEY=secrets.token_urlsafe(48))
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "gunicorn stopped"
            assert time.monotonic() < deadline, "no answer from gunicorn within 30 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/privacy", timeout=10) as response:
                    assert response.status == 200  # a worker built the app and serves it
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
    finally:
        output = _stop(server)
    assert "Configuration error" not in output
