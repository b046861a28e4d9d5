"""The UI's login sessions: random ids kept in the store, which end at their expiry, at logout,
and when the API token they were opened with is taken out of the configuration.

The cookie holds the id; the store holds its SHA-256 (`ui_sessions`, migration 014), so every
collector on the store (`--workers`, a restart) knows a session and a logout ends it for all of
them, while a copy of the table opens nothing. Each session has a CSRF token of its own, a keyed
hash of its id, which a page on another site can neither read nor derive.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from assay.collector.auth import TokenCheck
from assay.collector.store.base import Store

TABLE = "ui_sessions"
COLUMNS = ("session_hash", "token_binding", "created_at", "expires_at", "revoked")
_CSRF_CONTEXT = b"assay-ui-csrf-v1"
_ID_BYTES = 32  # 256 random bits per session


@dataclass(frozen=True)
class LoginSession:
    id: str  # the cookie's value
    expires_at: float  # Unix seconds

    @property
    def csrf(self) -> str:
        """The CSRF token of this session's forms."""
        return hmac.new(self.id.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()

    def seconds_left(self, now: float) -> int:
        return max(0, int(self.expires_at - now))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class LoginSessions:
    """Opens, finds and ends the sessions of one collector's API tokens, `lifetime_s` long."""

    def __init__(
        self,
        store: Store,
        check: TokenCheck,
        lifetime_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.check = check
        self.lifetime_s = lifetime_s
        self.clock = clock

    def open(self, token: str) -> LoginSession | None:
        """A new session for a person who gave `token`, or None when it is not accepted."""
        session_id = secrets.token_urlsafe(_ID_BYTES)
        binding = self.check.binding(token, session_id)
        if binding is None:
            return None
        now = self.clock()
        session = LoginSession(session_id, now + self.lifetime_s)
        self._write(session, binding, now, revoked=False)
        return session

    async def find(self, session_id: str | None) -> LoginSession | None:
        """The session a cookie names, if it is still valid (looked up off the event loop)."""
        if not session_id or len(session_id) > 4 * _ID_BYTES:
            return None
        return await asyncio.to_thread(self.lookup, session_id)

    def lookup(self, session_id: str) -> LoginSession | None:
        _, rows = self.store.query(
            f"SELECT token_binding, toUnixTimestamp64Milli(expires_at), revoked "
            f"FROM {self.store.database}.{TABLE} WHERE session_hash = {{hash:String}}",
            parameters={"hash": _hash(session_id)},
        )
        if not rows or any(revoked for _, _, revoked in rows):
            return None
        binding, expires_ms, _ = rows[0]
        expires_at = int(expires_ms) / 1000
        if expires_at <= self.clock() or not self.check.holds(session_id, str(binding)):
            return None
        return LoginSession(session_id, expires_at)

    def close(self, session: LoginSession) -> None:
        """Log out: the session ends for every collector on the store."""
        self._write(session, "", self.clock(), revoked=True)

    def _write(self, session: LoginSession, binding: str, now: float, revoked: bool) -> None:
        # DateTime64(3) columns take milliseconds.
        row = (_hash(session.id), binding, int(now * 1000), int(session.expires_at * 1000), revoked)
        self.store.insert(TABLE, [[value] for value in row], COLUMNS)
