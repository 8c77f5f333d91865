"""Keep tokens, passwords and what organizers search for out of every log line."""
from __future__ import annotations

import logging
import re

# Tokens appear in paths like /m/<token>, /unsubscribe/<token>, ?token=...; 32-byte
# urlsafe tokens are 43 characters.
_TOKEN = re.compile(r"([A-Za-z0-9_-]{4})[A-Za-z0-9_-]{28,}")
_PASSWORD = re.compile(r"(password=)[^&\s]+", re.IGNORECASE)
# What organizers search for (a name, an address) rides in GET query strings, which access
# logs keep: a person's name or email must not end up in a log line.
_SEARCH = re.compile(r"([?&](?:q|actor|email)=)[^&\s\"]+")


def mask_secrets(text: str) -> str:
    return _SEARCH.sub(r"\1***", _PASSWORD.sub(r"\1***", _TOKEN.sub(r"\1…", text)))


# In a traceback a token may stand anywhere (a link, a parameter, a quoted value): told from
# the code's own long names (subscription_for_unsubscribe_token, a constraint's name), which
# are lower case, by holding capitals and digits, as a random token all but always does.
_LONG_RUN = re.compile(r"[A-Za-z0-9_-]{32,}")


def _token_like(match: re.Match[str]) -> str:
    run = match.group(0)
    if any(c.isupper() for c in run) and any(c.isdigit() for c in run):
        return run[:4] + "…"
    return run
# PostgreSQL's DETAIL line quotes the values a constraint refused ("Key (email)=(...)",
# "Failing row contains (...)"): personal data, whatever SQLAlchemy hides.
_DATABASE_DETAIL = re.compile(r"^(DETAIL:).*$", re.MULTILINE)


def mask_traceback(text: str) -> str:
    text = _DATABASE_DETAIL.sub(r"\1 (values not logged)", text)
    return _SEARCH.sub(r"\1***", _PASSWORD.sub(r"\1***", _LONG_RUN.sub(_token_like, text)))


class TokenMaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # The traceback too: a formatter adds it after the message, from exc_text when that
        # is set, and an error's text can hold a link with its token (a review found live
        # unsubscribe links in a failed job's traceback).
        try:
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = mask_traceback(record.exc_text)
            if record.stack_info:
                record.stack_info = mask_traceback(record.stack_info)
        except Exception:  # a traceback that cannot be formatted is the formatter's to report
            pass
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logged as is
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_werkzeug_masking() -> None:
    """The development server logs request lines, tokens included: mask them."""
    logging.getLogger("werkzeug").addFilter(TokenMaskingFilter())


def install_record_masking() -> None:
    """Mask tokens and passwords in EVERY log record of the process, whatever logger or
    handler it goes through (gunicorn's access log, a job's logger, a handler added later).

    Handler filters only cover handlers that exist when they are attached; a record factory
    masks each record as it is made. Safe to call more than once.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "portal_masking", False):
        return
    masking = TokenMaskingFilter()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        masking.filter(record)
        return record

    factory.portal_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
