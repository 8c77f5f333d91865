"""gunicorn reads this file from the directory it starts in (the project's root).

Two hooks. Before any worker starts, the master checks the app's configuration and stops
with its one-line reason if production would refuse it: each worker would otherwise refuse
in turn, and gunicorn respawns a worker that exits with anything but status 3 (a deployment
review saw "Configuration error" and "Booting worker" alternate until it was killed).

Once a worker has loaded the app, everything loading it made (mappers, compiled templates,
the translations) is moved out of the garbage collector's sight with gc.freeze(). Full
collections then walk only what requests create; measured in one process, each full
collection of an unfrozen app took ~60 ms, stalling whatever request was running.
The one-insert app of bench/register.py is served with the same file.
"""
import gc
import subprocess
import sys

#: Builds the app the workers will serve, as they will (`portal:create_app("production")`
#: included), and drops it: whatever would refuse to start refuses here, once.
_CHECK = "import sys; from gunicorn.util import import_app; import_app(sys.argv[1])"


def on_starting(server) -> None:
    # In a child process: the portal imported into the master would stay in its modules, and
    # the workers a reload (HUP) forks would run the old code beside the new.
    app_uri = getattr(getattr(server, "app", None), "app_uri", None) or "portal:create_app()"
    check = subprocess.run([sys.executable, "-c", _CHECK, app_uri], capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        # The child's last line is ConfigurationError's own ("Configuration error: ...").
        lines = check.stderr.strip().splitlines()
        raise SystemExit(lines[-1] if lines else f"the configuration check failed (status {check.returncode})")


def post_worker_init(worker) -> None:
    gc.freeze()
