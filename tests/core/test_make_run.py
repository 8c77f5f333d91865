"""`make run`'s steps as separate processes: migrate, seed the demo, serve with run-dev.

The server is a real `flask run-dev` process on SQLite under a fresh instance directory; the
test reads pages over HTTP and waits for the demo's queued mail to reach the local mailbox,
which proves the in-process delivery the first command promises.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer to check, not to follow


_opener = urllib.request.build_opener(_NoRedirect)


def _get(url: str) -> tuple[int, str]:
    try:
        with _opener.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_make_run_serves_on_the_port_asked_for():
    """`make run PORT=8123` when 5000 is taken (-n: what it would run)."""
    planned = subprocess.run(["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True,
                             text=True, timeout=30)
    assert planned.returncode == 0, planned.stderr
    assert "flask run-dev --host 127.0.0.1 --port 8123" in planned.stdout


@pytest.mark.slow
def test_migrate_seed_and_serve_like_make_run(tmp_path):
    instance = tmp_path / "instance"
    environment = {
        **os.environ,
        "FLASK_APP": "portal",
        "PORTAL_ENV": "development",
        "PORTAL_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'portal.sqlite3'}",
        "MAIL_SERVER": "",
        "SCHEDULER_INTERVAL_SECONDS": "1",
    }
    environment.pop("PORTAL_TEST_DATABASE_URL", None)
    instance.mkdir()
    for step in (["db", "upgrade"], ["seed-demo"]):
        done = subprocess.run([FLASK, *step], cwd=ROOT, env=environment, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert "organizer@owg.example.ca" in done.stdout

    port = free_port()
    server = subprocess.Popen([FLASK, "run-dev", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, home = _get(base + "/")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "run-dev did not answer within 60 s"
                time.sleep(0.3)
        assert status == 200 and "<main" in home
        for path in ("/events", "/groups", "/lists/", "/guidelines/", "/privacy", "/login"):
            assert _get(base + path)[0] == 200, path
        assert _get(base + "/admin/mail")[0] == 302  # organizers only: to the login page

        # The demo queues mail; the in-process delivery writes it to the local mailbox.
        mailbox = instance / "mailbox"
        deadline = time.monotonic() + 90
        while not (mailbox.exists() and any(mailbox.glob("*.eml"))):
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "no demo message reached instance/mailbox in 90 s"
            time.sleep(0.5)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()
