"""The rule a new password must meet, and its hashing (OWASP ASVS 4 2.1.1, 2.1.7; ASVS 5 6.2).

At least 12 characters, at most 128, no composition rules. Common and breached passwords
are refused with zxcvbn's estimate, whose dictionaries hold the most common passwords of
public breaches, English words, names and keyboard patterns: a password it reckons can be
guessed in fewer than 10^8 tries (its score below 3) is refused, as is one that holds the
account's email address (before the @) or name. Only new passwords meet the rule: signing
in checks the hash and nothing else.

Hashed with argon2id at OWASP ASVS 5 strength (m=19 MiB, t=2, p=1); Werkzeug's default
scrypt (N=2^15) is below it.
"""
from __future__ import annotations

import re
import threading
import unicodedata

from argon2 import PasswordHasher
from flask_babel import lazy_gettext as _l
from zxcvbn import zxcvbn

from portal.core.errors import DomainError

password_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
#: zxcvbn's score (0-4) a new password needs: 3 is "safely unguessable" (10^8 guesses or more).
MIN_STRENGTH = 3
#: zxcvbn refuses longer input; the first 72 characters of a long passphrase are enough to judge.
_ESTIMATED_LENGTH = 72
#: Shorter parts of a name or address ("Li", "jo") are left out: they turn up in too many words.
_SHORTEST_PERSONAL_PART = 3

#: zxcvbn keeps the personal words of the call under way in a module global; two threads
#: checking at once would mix up each other's.
_estimate_lock = threading.Lock()


class WeakPassword(DomainError):
    message = _l("Use a password of at least 12 characters.")
    field = "password"


TOO_LONG = _l("Use a password of at most 128 characters.")
TOO_COMMON = _l("This password is too common or too easy to guess. Try a few unrelated words "
                "strung together.")
TOO_PERSONAL = _l("Your password must not contain your email address or your name.")


def _compact(text: str) -> str:
    """Letters and digits only, lower case, accents off: "Émilie O." -> "emilieo"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())


def _personal_words(email: str, name: str) -> tuple[list[str], list[str]]:
    """The whole address before the @ and the whole name, and the words in them: compacted,
    each at least _SHORTEST_PERSONAL_PART long."""
    local = (email or "").rpartition("@")[0] or (email or "")
    texts = (local, name or "")
    wholes = [_compact(text) for text in texts]
    words = [_compact(word) for text in texts for word in re.split(r"[\W_\d]+", text)]
    long_enough = lambda word: len(word) >= _SHORTEST_PERSONAL_PART  # noqa: E731
    return [w for w in wholes if long_enough(w)], [w for w in dict.fromkeys(words) if long_enough(w)]


def _mostly_personal(compact: str, wholes: list[str], words: list[str]) -> bool:
    """Whether the whole address (before the @) or the whole name is in the password, or their
    words make up half of its letters and digits ("Robertson-Kim-2026"). One such word among
    others ("chair password 1" for "A Chair") is left to zxcvbn's estimate."""
    if not compact:
        return False
    if any(whole in compact for whole in wholes):
        return True
    covered = [False] * len(compact)
    for word in words:
        start = compact.find(word)
        while start != -1:
            covered[start:start + len(word)] = [True] * len(word)
            start = compact.find(word, start + 1)
    return sum(covered) * 2 >= len(compact)


def check_new_password(password: str, *, email: str = "", name: str = "") -> None:
    """Raise `WeakPassword`, saying why, unless `password` may be used for the account with
    this email address and name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword()
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(TOO_LONG)
    wholes, words = _personal_words(email, name)
    if _mostly_personal(_compact(password), wholes, words):
        raise WeakPassword(TOO_PERSONAL)
    with _estimate_lock:
        estimate = zxcvbn(password[:_ESTIMATED_LENGTH], user_inputs=wholes + words)
    if estimate["score"] < MIN_STRENGTH:
        built_on_personal = any(match.get("dictionary_name") == "user_inputs" for match in estimate["sequence"])
        raise WeakPassword(TOO_PERSONAL if built_on_personal else TOO_COMMON)


def hash_password(password: str, *, email: str = "", name: str = "") -> str:
    """The argon2id hash of a new password, once it meets the rule (else `WeakPassword`)."""
    check_new_password(password, email=email, name=name)
    return password_hasher.hash(password)
