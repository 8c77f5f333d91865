"""Scheduler processes started for real (`flask --app portal scheduler`), killed for real."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class SchedulerProcess:
    """One `flask scheduler` process; its log goes to a file the test reads."""

    def __init__(self, app, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        environment = {
            **os.environ,
            "PORTAL_ENV": "testing",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "PORTAL_INSTANCE_PATH": app.instance_path,
            "MAIL_SERVER": "",
            "SCHEDULER_INTERVAL_SECONDS": "0.5",
            "SCHEDULER_STANDBY_POLL_SECONDS": "0.2",
            "SCHEDULER_JOBS": "release-guidelines",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        environment.pop("PORTAL_FAKE_NOW", None)
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "portal", "scheduler"],
            cwd=ROOT, env=environment, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not in the scheduler log:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no rollback, no lock release by the process itself."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def start_scheduler(app, tmp_path):
    started: list[SchedulerProcess] = []

    def start(name: str = "scheduler", **env: str) -> SchedulerProcess:
        process = SchedulerProcess(app, tmp_path / f"{name}-{len(started)}.log", **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
