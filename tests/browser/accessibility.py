"""axe-core checks, injected from the copy `make test` installs from the npm registry."""
from __future__ import annotations

import json
from pathlib import Path

AXE_JS = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


def assert_accessible(page, label: str = "") -> None:
    """No axe-core violation tagged wcag2a or wcag2aa on the page as it is now."""
    assert AXE_JS.exists(), "axe-core is not installed: run `make test` (npm ci in tests/browser)"
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})"
    )
    violations = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]
    assert not violations, f"axe violations on {label or page.url}:\n{json.dumps(violations, indent=2)}"
