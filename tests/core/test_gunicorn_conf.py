"""gunicorn.conf.py: what every web worker does once it has loaded the app."""
from __future__ import annotations

import gc
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_freezes_what_loading_the_app_made():
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0
    try:
        hooks["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 0  # startup objects are out of the collector's sight
    finally:
        gc.unfreeze()
