"""Small pieces views share: where a request came from, safe redirects, domain errors."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import request


def request_origin() -> str:
    """The client address (ProxyFix, when configured, has already resolved forwarding)."""
    return (request.remote_addr or "")[:64]


def user_agent() -> str:
    return (request.headers.get("User-Agent") or "")[:300]


def is_safe_next(target: str | None) -> bool:
    """Only a path on this site: no scheme, no host, no protocol-relative `//evil`."""
    if not target or len(target) > 500:
        return False
    if target.startswith("//") or target.startswith("/\\") or "\\" in target:
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and target.startswith("/")
