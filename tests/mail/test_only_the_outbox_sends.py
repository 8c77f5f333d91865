"""Every message goes through the outbox: nothing but the delivery module talks SMTP."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The one module allowed to speak SMTP (it sends outbox rows, and nothing else).
ALLOWED = {"portal/mail/delivery.py"}
SEND_METHODS = {"send", "send_message", "sendmail", "connect"}
MAIL_OBJECT = re.compile(r"(^|[^a-z0-9_])mail(\(\))?$|\[['\"]mail['\"]\]$", re.IGNORECASE)


def direct_smtp_uses(source: str) -> list[str]:
    """Lines of `source` that import smtplib, Flask-Mail's senders, or send through them."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] == "smtplib"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root == "smtplib" or (root == "flask_mail" and any(a.name != "Mail" for a in node.names)):
                found.append(f"{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = ast.unparse(node.func.value)
            if node.func.attr in SEND_METHODS and MAIL_OBJECT.search(target):
                found.append(f"{node.lineno}: {target}.{node.func.attr}(...)")
            if target in ("smtplib", "flask_mail"):
                found.append(f"{node.lineno}: {target}.{node.func.attr}(...)")
    return found


def test_the_checker_catches_every_way_of_sending_directly():
    source = "\n".join([
        "import smtplib",
        "from smtplib import SMTP",
        "from flask_mail import Message, Mail",
        "mail.send(msg)",
        "Mail().send(msg)",
        "current_app.extensions['mail'].send(msg)",
        "mail.connect()",
        "email.send(x)",          # not Flask-Mail: allowed
        "socket.send(b'x')",      # allowed
    ])
    assert [hit.split(":")[0] for hit in direct_smtp_uses(source)] == ["1", "2", "3", "4", "5", "6", "7"]


def test_no_direct_smtp_anywhere_but_the_delivery_module():
    offenders = {}
    for path in sorted((ROOT / "portal").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in ALLOWED:
            continue
        hits = direct_smtp_uses(path.read_text(encoding="utf-8"))
        if hits:
            offenders[relative] = hits
    assert offenders == {}, f"send mail with portal.mail.services.queue_email instead: {offenders}"
    delivery = (ROOT / "portal/mail/delivery.py").read_text(encoding="utf-8")
    assert direct_smtp_uses(delivery), "the checker should see the delivery module's own SMTP use"
