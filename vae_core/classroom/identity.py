"""Who a student is: a secret token the browser keeps, the owner id it stands for, and a display name.

The token is the credential (random, kept in a cookie). Run folders, bundles and class summaries record
only the owner id, a hash of the token: whoever reads them cannot act as the student. The display name
is a label the student types; two students may share one, and changing it changes no ownership.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
OWNER = re.compile(r"^[0-9a-f]{24}$")
NAME_MAX, TITLE_MAX, NOTE_MAX = 40, 80, 1000  # characters of a display name, a run's title, a note


def new_token() -> str:
    """32 URL-safe characters: 192 random bits."""
    return secrets.token_urlsafe(24)


def valid_token(token) -> bool:
    return isinstance(token, str) and bool(TOKEN.match(token))


def owner_of(token: str) -> str:
    """The owner id that `token` stands for (a hash: the id does not give the token away)."""
    if not valid_token(token):
        raise ValueError("not a student token")
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def plain_text(text, limit: int, *, lines: bool = False) -> str:
    """`text` as plain, printable text of at most `limit` characters: control and format characters removed
    (line breaks kept where `lines`), runs of spaces collapsed. Markup stays text: pages show it escaped."""
    if not isinstance(text, str):
        return ""
    kept = []
    for ch in unicodedata.normalize("NFC", text):
        if ch == "\n" and lines:
            kept.append(ch)
        elif unicodedata.category(ch)[0] in "CZ":  # control, format, surrogate, private use; separators
            kept.append(" ")
        else:
            kept.append(ch)
    out = "\n".join(re.sub(r" +", " ", line).strip() for line in "".join(kept).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", out).strip()[:limit].strip()


def default_name(owner: str) -> str:
    return f"Student {owner[:4]}"
