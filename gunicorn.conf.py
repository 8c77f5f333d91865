"""gunicorn reads this file from the directory it starts in (the project's root).

Two hooks. Before any worker starts, the master checks the portal's configuration and stops
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


def on_starting(server) -> None:
    # The environment alone, as `portal:create_app()` reads it; the app is not built here,
    # so nothing (engines, connections) is made in the master for the workers to inherit.
    from portal import check_configuration

    check_configuration()


def post_worker_init(worker) -> None:
    gc.freeze()
