"""Manager sessions, their CSRF tokens, and the login lockout (all server-side, in memory).

* :class:`SessionStore`: a session is 256 random bits in a cookie (``Secure; HttpOnly;
  SameSite=Strict``), mapped here to the account, its role and a CSRF token bound to the session
  (OWASP's synchronizer token pattern). It ends on logout, after ``idle`` seconds without a
  request, after ``lifetime`` seconds in any case, or when the account is disabled, its role
  changes or its password changes (checked on each request by the page routes). A restart ends
  every session.
* :class:`LoginThrottle`: after ``max_failures`` failed logins within ``window`` seconds, the
  account *and* the client address are locked for ``cooldown`` seconds (PCI DSS v4.0, 8.3.4:
  at most 10 attempts, locked for at least 30 minutes or until an administrator unlocks;
  the defaults are 5 attempts and 30 minutes). A success clears the account's failures.

Both are bounded: the oldest entries go first when the tables are full.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LoginThrottle", "Session", "SessionStore"]


@dataclass(slots=True)
class Session:
    """One manager's login."""

    id: str
    manager: str
    role: str
    csrf: str
    created: float
    last_seen: float
    #: The account's ``changed_ms`` at login: a password changed since ends the session.
    account_changed_ms: int = 0

    @property
    def actor(self) -> str:
        """``manager:NAME``."""
        return f"manager:{self.manager}"

    def csrf_ok(self, token: str | None) -> bool:
        """True when ``token`` is this session's CSRF token (constant time)."""
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionStore:
    """Server-side sessions (see the module docstring).

    Args:
        idle: Seconds without a request after which a session ends.
        lifetime: Seconds after login after which a session ends anyway.
        capacity: At most this many sessions (the oldest is dropped).
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        *,
        idle: float = 900.0,
        lifetime: float = 8 * 3600.0,
        capacity: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle = idle
        self._lifetime = lifetime
        self._capacity = capacity
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, manager: str, role: str, account_changed_ms: int = 0) -> Session:
        """A new session for a manager who just logged in."""
        now = self._clock()
        session = Session(
            id=secrets.token_urlsafe(32),
            manager=manager,
            role=role,
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
            account_changed_ms=account_changed_ms,
        )
        self._sessions[session.id] = session
        while len(self._sessions) > self._capacity:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (its idle clock restarts), or None."""
        if session_id is None:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self._idle or now - session.created > self._lifetime:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        return session

    def end(self, session_id: str | None) -> None:
        """End a session (logout); an unknown id is ignored."""
        if session_id is not None:
            self._sessions.pop(session_id, None)

    def end_all_of(self, manager: str) -> int:
        """End every session of ``manager`` (account disabled or password changed)."""
        doomed = [key for key, s in self._sessions.items() if s.manager == manager]
        for key in doomed:
            del self._sessions[key]
        return len(doomed)

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass(slots=True)
class _Failures:
    times: list[float]
    locked_until: float = 0.0


class LoginThrottle:
    """Lockout after repeated login failures, per account and per client address.

    Args:
        max_failures: Failures within ``window`` that lock.
        window: Seconds over which failures are counted.
        cooldown: Seconds a lock lasts.
        capacity: Entries kept per table (the oldest are dropped).
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window: float = 900.0,
        cooldown: float = 1800.0,
        capacity: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self._window = window
        self._cooldown = cooldown
        self._capacity = capacity
        self._clock = clock
        self._accounts: OrderedDict[str, _Failures] = OrderedDict()
        self._addresses: OrderedDict[str, _Failures] = OrderedDict()

    def locked_for(self, account: str, address: str) -> float:
        """Seconds left of a lock on the account or the address (0: may try)."""
        now = self._clock()
        left = 0.0
        for table, key in ((self._accounts, account), (self._addresses, address)):
            entry = table.get(key)
            if entry is not None:
                left = max(left, entry.locked_until - now)
        return max(0.0, left)

    def failed(self, account: str, address: str) -> bool:
        """Record a failure; True when it locked the account or the address."""
        now = self._clock()
        locked = False
        for table, key in ((self._accounts, account), (self._addresses, address)):
            entry = table.pop(key, None) or _Failures([])
            entry.times = [t for t in entry.times if now - t <= self._window] + [now]
            if len(entry.times) >= self.max_failures and entry.locked_until <= now:
                entry.locked_until = now + self._cooldown
                entry.times = []
                locked = True
            table[key] = entry
            while len(table) > self._capacity:
                table.popitem(last=False)
        return locked

    def succeeded(self, account: str) -> None:
        """A good password: the account's failure count starts again."""
        self._accounts.pop(account, None)
