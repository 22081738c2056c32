"""Last known good: this replica's verdicts, kept on disk to answer from while a registry is down.

When an image's registry cannot be reached, times out, rate-limits or fails (`OUTAGE_REASONS`),
a digest this replica verified under the same trust fingerprint within `max_age` is answered from
that verdict, marked `stale` in the report (when it was verified, and why it could not be now).
The provider only states the fact: the Rego pack decides whether a constraint's
`outageGraceSeconds` (default 0: deny) admits it, so the policy owns the trade-off.

What it never does:

- answer a tag: a key without a digest is never answered from here (a tag may have moved);
- outlive the trust: the trust fingerprint is part of the key, so any edit of the config (a
  revocation, a validity window, a key) leaves every stored verdict unreachable, and a verdict
  is not used past its report's `valid_until` (a key window judged at verification closing);
- keep a failure: only verdicts in which some attestor verified are stored;
- keep a request waiting: every call runs on the store's own thread, a lookup bounded by
  `lookup_timeout`; writes are queued (at most `_MAX_PENDING`) and dropped past that.

Stored in SQLite (stdlib), bounded to `max_entries` (the oldest verifications go first), so it
survives a restart when its file is on a volume that does. A file SQLite cannot read is moved
aside (`<file>.corrupt-<time>`) and a new one started: it is a cache, never a source of trust.

Metrics: `signet_cache_lookups_total{cache="last_known_good",result=hit|miss|error}` and
`signet_last_known_good_writes_total{result=stored|dropped|error}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from signet.model.report import Report
from signet.observe.metrics import Metrics
from signet.reasons import Reason

__all__ = [
    "DEFAULT_MAX_AGE",
    "OUTAGE_REASONS",
    "LastKnownGood",
    "LastKnownGoodSettings",
    "StoredVerdict",
]

log = logging.getLogger("signet.last_good")

# (registry, repository, digest, trust-config fingerprint): the engine's verdict key.
VerdictKey = tuple[str, str, str, str]

# The failures a registry outage causes; an auth failure or a bug is not one.
OUTAGE_REASONS = frozenset(
    {
        Reason.REGISTRY_UNAVAILABLE,
        Reason.REGISTRY_TIMEOUT,
        Reason.REGISTRY_RATE_LIMITED,
        Reason.DEADLINE_EXCEEDED,
    }
)

DEFAULT_MAX_AGE = 86_400.0  # the provider's own bound; constraints choose theirs below it

_SCHEMA_VERSION = 1
_MAX_PENDING = 256  # writes queued for the store's thread
_PRUNE_EVERY = 256  # writes between two prunings (so the bound overshoots by at most this)


@dataclass(frozen=True, slots=True)
class LastKnownGoodSettings:
    path: Path
    max_age: float = DEFAULT_MAX_AGE
    max_entries: int = 100_000
    lookup_timeout: float = 0.2

    def __post_init__(self) -> None:
        if self.max_age <= 0 or self.max_entries < 1 or self.lookup_timeout <= 0:
            raise ValueError("max_age, max_entries and lookup_timeout must be positive")


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    report: Report
    verified_at: float  # epoch seconds


class LastKnownGood:
    def __init__(
        self,
        settings: LastKnownGoodSettings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signet-last-good")
        self._db: sqlite3.Connection | None = None
        self._pending = 0
        self._writes_since_prune = 0
        self._closed = False
        self._lookups = {
            result: metrics.cache.labels("last_known_good", result)
            for result in ("hit", "miss", "error")
        }
        self._writes = {
            result: metrics.last_known_good_writes.labels(result)
            for result in ("stored", "dropped", "error")
        }
        try:
            self._thread.submit(self._open).result()
        except BaseException:
            self._thread.shutdown(wait=False)
            raise

    # -- the engine's two calls ----------------------------------------------------------------

    def remember(self, key: VerdictKey, report: Report) -> None:
        """Store a verdict just reached (not waited for); one nobody verified is not kept."""
        if self._closed or not report.verified or report.stale is not None:
            return
        if self._pending >= _MAX_PENDING:
            self._writes["dropped"].inc()
            return
        self._pending += 1
        future = self._thread.submit(self._write, key, report, self._clock())
        future.add_done_callback(self._written)

    async def lookup(self, key: VerdictKey) -> StoredVerdict | None:
        """The verdict stored for `key`, if it may still be used now; None otherwise, or when
        the store does not answer within `lookup_timeout`."""
        if self._closed:
            return None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.settings.lookup_timeout):
                found = await loop.run_in_executor(self._thread, self._read, key, self._clock())
        except (TimeoutError, sqlite3.Error, RuntimeError) as exc:
            log.warning("last-known-good lookup failed: %s", exc or type(exc).__name__)
            self._lookups["error"].inc()
            return None
        self._lookups["miss" if found is None else "hit"].inc()
        return found

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._thread.submit(self._close_db)
        self._thread.shutdown(wait=True)

    # -- on the store's thread -----------------------------------------------------------------

    def _open(self) -> None:
        path = self.settings.path
        try:
            self._db = self._connect(path)
        except sqlite3.OperationalError as exc:  # no such folder, no permission, disk full, ...
            raise ValueError(f"last-known-good store {path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(f"{path.name}.corrupt-{int(self._clock())}")
            log.error("last-known-good store %s is unreadable (%s); moved to %s", path, exc, aside)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").rename(f"{aside}{suffix}")
            self._db = self._connect(path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"schema version {version}, expected {_SCHEMA_VERSION}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS verdicts ("
                " registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,"
                " trust TEXT NOT NULL, verified_at REAL NOT NULL, valid_until REAL,"
                " report TEXT NOT NULL,"
                " PRIMARY KEY (registry, repository, digest, trust)) WITHOUT ROWID"
            )
            db.execute("CREATE INDEX IF NOT EXISTS by_age ON verdicts (verified_at)")
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            db.execute("SELECT count(*) FROM verdicts").fetchone()  # reads every page's header
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _write(self, key: VerdictKey, report: Report, now: float) -> None:
        assert self._db is not None
        self._db.execute(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*key, now, report.valid_until, json.dumps(report.to_json(), separators=(",", ":"))),
        )
        self._writes_since_prune += 1
        if self._writes_since_prune >= _PRUNE_EVERY:
            self._writes_since_prune = 0
            self._prune(now)

    def _written(self, future: Future[None]) -> None:
        self._pending -= 1
        error = future.exception()
        if error is None:
            self._writes["stored"].inc()
        else:
            log.warning("last-known-good write failed: %s", error)
            self._writes["error"].inc()

    def _prune(self, now: float) -> None:
        assert self._db is not None
        self._db.execute(
            "DELETE FROM verdicts WHERE verified_at < ?", (now - self.settings.max_age,)
        )
        self._db.execute(
            "DELETE FROM verdicts WHERE verified_at <= (SELECT verified_at FROM verdicts"
            " ORDER BY verified_at DESC LIMIT 1 OFFSET ?)",
            (self.settings.max_entries,),
        )

    def _read(self, key: VerdictKey, now: float) -> StoredVerdict | None:
        assert self._db is not None
        row = self._db.execute(
            "SELECT verified_at, valid_until, report FROM verdicts"
            " WHERE registry = ? AND repository = ? AND digest = ? AND trust = ?",
            key,
        ).fetchone()
        if row is None:
            return None
        verified_at, valid_until, text = row
        if now - verified_at > self.settings.max_age or verified_at > now:
            return None
        if valid_until is not None and now >= valid_until:
            return None
        try:
            report = Report.from_json(json.loads(text))
        except ValueError as exc:  # json.JSONDecodeError is one
            log.warning("last-known-good entry for %s is unusable: %s", key[2], exc)
            return None
        if report.digest != key[2]:
            return None
        return StoredVerdict(report, verified_at)
