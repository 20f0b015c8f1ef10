"""How many failed logins are allowed, and for how long they count: PROTOCOL.md's limits table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoginLimits:
    """Failed logins allowed per window; one more attempt is refused until the window has passed.

    Source: PROTOCOL.md, limits table ("failed logins within 15 minutes"). Only tests choose others.
    """

    # For one user name from one client address: slows guessing one account's password.
    per_name_and_address: int = 10
    # From one client address over all names: slows trying one common password on many accounts.
    per_address: int = 100
    window_seconds: int = 15 * 60
