"""gunicorn reads this file from the directory it starts in (the project's root).

Only one setting: once a worker has loaded the app, everything loading it made (mappers,
compiled templates, the translations) is moved out of the garbage collector's sight with
gc.freeze(). Full collections then walk only what requests create; measured in one process,
each full collection of an unfrozen app took ~60 ms, stalling whatever request was running.
The one-insert app of bench/register.py is served with the same file.
"""
import gc


def post_worker_init(worker) -> None:
    gc.freeze()
