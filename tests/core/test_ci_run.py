""".ci/run stops, saying which, when PostgreSQL or Redis cannot be reached.

The script runs with stand-ins for the service commands (and for `make`, `apt-get` and
`sleep`) first on its PATH, so each case is set up without touching this machine's servers.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_ci(tmp_path: Path, **commands: str) -> subprocess.CompletedProcess:
    """.ci/run with each named command replaced by a shell snippet; `make` records its call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_ins = {"make": f'echo "make $*" >> {tmp_path / "make.log"}', "apt-get": "exit 0", "npm": "exit 0",
                 "sleep": "exit 0", **commands}
    for name, body in stand_ins.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return subprocess.run([str(ROOT / ".ci" / "run")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})


UP = {"pg_isready": "exit 0", "redis-cli": "echo PONG"}


def test_the_suite_runs_when_both_services_answer(tmp_path):
    done = _run_ci(tmp_path, **UP)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "make.log").read_text() == "make test\n"


def test_no_postgresql_cluster_on_its_port_stops_the_run_before_the_suite(tmp_path):
    done = _run_ci(tmp_path, **{**UP, "pg_isready": "exit 2",
                                "pg_lsclusters": "echo '15 other 5433 down postgres /var/lib/x /var/log/x'"})
    assert done.returncode != 0
    assert "PostgreSQL is not answering on 127.0.0.1:5432 and no cluster is set up on that port" in done.stderr
    assert not (tmp_path / "make.log").exists()


def test_a_postgresql_cluster_that_does_not_start_stops_the_run_naming_it(tmp_path):
    done = _run_ci(tmp_path, **{**UP, "pg_isready": "exit 2",
                                "pg_lsclusters": "echo '16 portal 5432 down postgres /var/lib/x /var/log/x'",
                                "pg_ctlcluster": f'echo "$*" > {tmp_path / "started"}; exit 1'})
    assert done.returncode != 0
    assert (tmp_path / "started").read_text() == "--skip-systemctl-redirect 16 portal start\n"
    assert "PostgreSQL cluster 16 portal did not answer on 127.0.0.1:5432" in done.stderr
    assert not (tmp_path / "make.log").exists()


def test_redis_that_does_not_start_stops_the_run_naming_it(tmp_path):
    done = _run_ci(tmp_path, **{**UP, "redis-cli": "exit 1", "redis-server": "exit 1"})
    assert done.returncode != 0
    assert "Redis did not answer on 127.0.0.1:6379" in done.stderr
    assert not (tmp_path / "make.log").exists()
