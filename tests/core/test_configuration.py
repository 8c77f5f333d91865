"""Every setting an operator may change is an environment variable the README documents."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What config.py and the portal read from the environment: `_flag("NAME")`,
#: `os.environ.get("NAME")`, `os.environ["NAME"]`, ...
_READ = re.compile(r"""(?:_flag|_int|_float|os\.environ\.get|os\.getenv)\(\s*"([A-Z0-9_]+)"|os\.environ\["([A-Z0-9_]+)"\]""")

#: Read, but not for operators.
NOT_SETTINGS = {
    "PORTAL_FAKE_NOW",  # the tests' clock (portal/core/clock.py)
}


def test_every_environment_variable_the_portal_reads_is_in_the_readme():
    """Found by a deployment review: EVENTS_REGISTER_RATE_LIMIT was read but not in the
    Configuration table (and two flags were read that nothing used)."""
    sources = [ROOT / "config.py", ROOT / "gunicorn.conf.py", *sorted((ROOT / "portal").rglob("*.py"))]
    read = {name for source in sources for match in _READ.finditer(source.read_text())
            for name in match.groups() if name}
    readme = (ROOT / "README.md").read_text()
    assert "EVENTS_REGISTER_RATE_LIMIT" in read  # the pattern finds what it is meant to
    missing = sorted(name for name in read - NOT_SETTINGS if f"`{name}`" not in readme)
    assert missing == []
