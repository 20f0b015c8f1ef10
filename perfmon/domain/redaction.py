"""What a credential looks like in text, so that none reaches a log line: exception texts are data (a
database driver's DETAIL line repeats the key that broke a constraint, an OSError names its file)."""

from __future__ import annotations

import re

# Session hashes are UUIDs; API keys are pmk_ + 43 characters; password hashes are Argon2 PHC strings.
_CREDENTIALS = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
    r"|pmk_[A-Za-z0-9_-]+"
    r"|\$argon2[^\s'\"]*"
)


def redact(text: str) -> str:
    """The text with whatever looks like a credential replaced by <redacted>."""
    return _CREDENTIALS.sub("<redacted>", text)
