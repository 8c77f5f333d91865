"""Where guideline PDFs live: `<instance>/guidelines/`, outside static/, under server-chosen names.

Nothing here trusts the uploader: the content must start with the PDF magic and end with its
trailer, the name must end in .pdf, empty and oversized files are refused, and the file on
disk is named by the server.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.core.errors import DomainError

PDF_MAGIC = b"%PDF-"
#: A PDF ends with this marker; readers look for it within the file's last 1,024 bytes (the
#: PDF reference, "File Trailer": bytes after it are tolerated, such as a final line break).
PDF_END = b"%%EOF"
PDF_END_WITHIN = 1024
DEFAULT_MAX_BYTES = 15 * 1024 * 1024


class UploadRefused(DomainError):
    message = _l("That file cannot be used.")
    status = 400


@dataclass(frozen=True)
class StoredFile:
    stored_name: str
    original_name: str
    sha256: str
    size_bytes: int


def storage_dir() -> Path:
    path = Path(current_app.instance_path) / "guidelines"
    path.mkdir(parents=True, exist_ok=True)
    return path


def max_bytes() -> int:
    return int(current_app.config.get("GUIDELINE_MAX_BYTES") or DEFAULT_MAX_BYTES)


def safe_download_name(name: str, fallback: str = "guideline.pdf") -> str:
    """An ASCII file name with only letters, digits, dot, dash and underscore, ending in .pdf."""
    normalized = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    normalized = os.path.basename(normalized.replace("\\", "/"))
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", normalized).strip(".-_")[:120]
    if not cleaned.lower().endswith(".pdf"):
        cleaned = (cleaned + ".pdf") if cleaned else ""
    return cleaned if len(cleaned) > 4 else fallback


def check_and_store(stream: BinaryIO, filename: str) -> StoredFile:
    """Check an uploaded PDF and write it to storage; raise `UploadRefused` with a clear reason."""
    if not (filename or "").lower().endswith(".pdf"):
        raise UploadRefused(_l("Choose a PDF file (its name must end in .pdf)."))
    limit = max_bytes()
    content = stream.read(limit + 1)
    if not content:
        raise UploadRefused(_l("The file is empty. Choose the PDF again."))
    if len(content) > limit:
        raise UploadRefused(
            _l("The file is larger than %(size)s MB. Reduce its size and try again.",
               size=format(limit / (1024 * 1024), "g"))
        )
    # The start alone is five bytes anyone can type before other content; a PDF reader also
    # needs the trailer at the end, so a file without one would not open for whoever downloads it.
    if not content.startswith(PDF_MAGIC) or PDF_END not in content[-PDF_END_WITHIN:]:
        raise UploadRefused(_l("The file is not a PDF (its content does not begin and end like a PDF)."))
    return store_bytes(content, filename)


def store_bytes(content: bytes, filename: str) -> StoredFile:
    """Write checked bytes under a random server-chosen name."""
    stored_name = f"{secrets.token_hex(16)}.pdf"
    path = storage_dir() / stored_name
    tmp = path.with_suffix(".part")
    tmp.write_bytes(content)
    os.replace(tmp, path)  # never a half-written file under the final name
    return StoredFile(
        stored_name=stored_name,
        original_name=safe_download_name(filename),
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
    )


def path_of(stored_name: str) -> Path:
    """The path of a stored file; the name is ours, but refuse anything that is not a plain name."""
    if not re.fullmatch(r"[0-9a-f]{32}\.pdf", stored_name or ""):
        raise FileNotFoundError(stored_name)
    return storage_dir() / stored_name


def remove(stored_name: str) -> None:
    try:
        path_of(stored_name).unlink()
    except FileNotFoundError:
        pass


#: session.info key: files to delete once the transaction ends, by how it ends.
_FILES_AFTER = "portal_guideline_files"


def replaced_in_this_transaction(old_name: str | None, new_name: str) -> None:
    """A file takes the place of another in the session's transaction: the old one is
    deleted if it commits, the new one if it rolls back, so neither stays on disk unused."""
    from portal.extensions import db

    pending = db.session().info.setdefault(_FILES_AFTER, {"commit": [], "rollback": []})
    if old_name:
        pending["commit"].append(path_of(old_name))
    pending["rollback"].append(path_of(new_name))


@event.listens_for(Session, "after_commit")
def _delete_replaced_files(session: Session) -> None:
    # Savepoints (begin_nested) commit and roll back too: only the outermost transaction
    # decides whether a file is in use.
    if session.in_nested_transaction():
        return
    for path in session.info.pop(_FILES_AFTER, {}).get("commit", ()):
        path.unlink(missing_ok=True)


@event.listens_for(Session, "after_rollback")
def _delete_unused_uploads(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for path in session.info.pop(_FILES_AFTER, {}).get("rollback", ()):
        path.unlink(missing_ok=True)
