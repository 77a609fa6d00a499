"""The crawl's plan and journal, kept in the store itself (tables ``crawl_plan`` and
``crawl_visits``, beside ``exchanges``) so a crawl that stops for any reason resumes where it
stopped and nothing is done twice.

Each visit (profile, site, visit number) goes pending -> started -> done or failed. A visit
left 'started' was interrupted: on resume its exchanges (the profile's client, recorded from
the visit's start on; a profile visits one site at a time) are deleted in the same transaction
that sets it back to pending, so the store holds each visit once, whole. Failed visits are
recorded with their error and not retried.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from analysis.store import Store

_TABLES = """
CREATE TABLE IF NOT EXISTS crawl_plan (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS crawl_visits (
  profile TEXT NOT NULL,
  site_index INTEGER NOT NULL,
  site TEXT NOT NULL,
  visit INTEGER NOT NULL,
  kind TEXT,
  state TEXT NOT NULL DEFAULT 'pending',
  started REAL,
  finished REAL,
  pages INTEGER,
  error TEXT,
  PRIMARY KEY (profile, site_index, visit)
);
CREATE INDEX IF NOT EXISTS crawl_visits_started ON crawl_visits(profile, started);
CREATE TABLE IF NOT EXISTS crawl_recorders (pid INTEGER PRIMARY KEY, started REAL NOT NULL);
"""

#: Visit states; only 'done' and 'failed' are final.
STATES = ("pending", "started", "done", "failed")


class JournalError(Exception):
    """The store holds another crawl plan (different sites, profiles, visits or mode)."""


@dataclass(frozen=True)
class Plan:
    """What one crawl visits; stored on the first run, compared on every resume."""

    sites: tuple[str, ...]
    profiles: tuple[str, ...]
    visits: int
    links: int
    partitioned: bool

    def encode(self) -> dict[str, str]:
        return {
            "sites": json.dumps(list(self.sites)),
            "profiles": json.dumps(list(self.profiles)),
            "visits": str(self.visits),
            "links": str(self.links),
            "cache": "partitioned" if self.partitioned else "unpartitioned",
        }


@dataclass(frozen=True)
class Visit:
    profile: str
    site_index: int  # the site's place in the plan (Plan.sites[site_index] is its URL)
    site: str  # as stored (Journal.stored_url)
    visit: int


class Journal:
    """One connection to the store's crawl tables (one per thread)."""

    def __init__(self, db: str | os.PathLike[str]) -> None:
        with Store(db) as store:  # creates or migrates the store, refuses a newer one
            self.key = store.key
        from analysis.store import connect

        self.db = Path(db)
        self.conn = connect(self.db)
        self.conn.executescript(_TABLES)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the plan
    def stored_url(self, url: str) -> str:
        """A site as the store keeps it: as exchanges' URLs are (query values keyed-hashed,
        userinfo dropped), never in clear; the crawl itself visits the URL it was given."""
        from analysis.privacy import sanitise_url

        return sanitise_url(url, self.key)[0]

    def adopt(self, plan: Plan) -> bool:
        """Record ``plan`` (first run, returns True) or check it is the stored one (resume,
        returns False); JournalError names what differs."""
        plan = replace(plan, sites=tuple(self.stored_url(s) for s in plan.sites))
        wanted = plan.encode()
        stored = dict(self.conn.execute("SELECT name, value FROM crawl_plan").fetchall())
        if stored:
            differs = [k for k, v in wanted.items() if stored.get(k) != v]
            if differs:
                raise JournalError(
                    f"{self.db} holds a crawl with other {', '.join(differs)} "
                    f"(stored: {', '.join(f'{k}={_short(stored.get(k))}' for k in differs)}); "
                    "resume it with the same arguments or use another --db")
            return False
        rows = [(p, i, s, n) for p in plan.profiles for i, s in enumerate(plan.sites)
                for n in range(1, plan.visits + 1)]
        with self.conn:
            self.conn.executemany("INSERT INTO crawl_plan VALUES (?, ?)", wanted.items())
            self.conn.executemany(
                "INSERT OR IGNORE INTO crawl_visits (profile, site_index, site, visit) "
                "VALUES (?, ?, ?, ?)", rows)
        return True

    # --- resuming
    def interrupted(self) -> int:
        """How many visits were left 'started' by an interrupted run."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM crawl_visits WHERE state = 'started'").fetchone()[0]

    def interrupted_of(self, profile: str) -> int:
        return self.conn.execute(
            "SELECT COUNT(*) FROM crawl_visits WHERE profile = ? AND state = 'started'",
            (profile,)).fetchone()[0]

    def recover(self) -> int:
        """Undo interrupted visits: delete their exchanges and make them pending again, in one
        transaction. Call once no recorder of the interrupted run is writing any more."""
        rows = self.conn.execute(
            "SELECT profile, MIN(started) FROM crawl_visits WHERE state = 'started' "
            "GROUP BY profile").fetchall()
        deleted = 0
        with self.conn:
            for profile, since in rows:
                deleted += self.conn.execute(
                    "DELETE FROM exchanges WHERE client = ? AND started >= ?",
                    (profile, since)).rowcount
            self.conn.execute(
                "UPDATE crawl_visits SET state = 'pending', started = NULL, kind = NULL "
                "WHERE state = 'started'")
        return deleted

    def reopen_recent(self, profile: str, seconds: float) -> int:
        """A recorder killed outright loses the rows it had not committed yet: the profile's
        visits finished in the last ``seconds`` (at least its last one) go back to 'started',
        so that a resume removes what of them was stored and does them again."""
        with self.conn:
            last = self.conn.execute(
                "SELECT MAX(finished) FROM crawl_visits WHERE profile = ? AND state = 'done'",
                (profile,)).fetchone()[0]
            if last is None:
                return 0
            return self.conn.execute(
                "UPDATE crawl_visits SET state = 'started', finished = NULL, pages = NULL "
                "WHERE profile = ? AND state = 'done' AND finished >= ?",
                (profile, min(last, time.time() - seconds))).rowcount

    def add_recorder(self, pid: int) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO crawl_recorders VALUES (?, ?)",
                              (pid, time.time()))

    def remove_recorder(self, pid: int) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM crawl_recorders WHERE pid = ?", (pid,))

    def recorders(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT pid FROM crawl_recorders")]

    # --- the work
    def pending(self, profile: str) -> list[Visit]:
        rows = self.conn.execute(
            "SELECT profile, site_index, site, visit FROM crawl_visits "
            "WHERE profile = ? AND state = 'pending' ORDER BY site_index, visit", (profile,))
        return [Visit(*r) for r in rows]

    def start(self, visit: Visit, kind: str) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE crawl_visits SET state = 'started', kind = ?, started = ? "
                "WHERE profile = ? AND site_index = ? AND visit = ?",
                (kind, time.time(), visit.profile, visit.site_index, visit.visit))

    def finish(self, visit: Visit, pages: int, error: str | None = None) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE crawl_visits SET state = ?, finished = ?, pages = ?, error = ? "
                "WHERE profile = ? AND site_index = ? AND visit = ?",
                ("failed" if error else "done", time.time(), pages, error,
                 visit.profile, visit.site_index, visit.visit))

    def counts(self) -> dict[str, int]:
        found = dict(self.conn.execute(
            "SELECT state, COUNT(*) FROM crawl_visits GROUP BY state").fetchall())
        return {s: int(found.get(s, 0)) for s in STATES}

    def profile_finished(self, profile: str) -> bool:
        return self.conn.execute(
            "SELECT COUNT(*) FROM crawl_visits WHERE profile = ? AND state IN "
            "('pending', 'started')", (profile,)).fetchone()[0] == 0

    def exchange_visits(self) -> list[tuple[str, str, str, int]]:
        """(client, url, site, visit) of every exchange recorded by this crawl: each exchange
        belongs to the last visit its profile started before it."""
        return self.conn.execute(
            "SELECT e.client, e.url, v.site, v.visit FROM exchanges e JOIN crawl_visits v "
            "ON v.profile = e.client AND v.started = (SELECT MAX(w.started) FROM crawl_visits w "
            "WHERE w.profile = e.client AND w.started <= e.started)").fetchall()

    def rows(self) -> list[sqlite3.Row]:
        self.conn.row_factory = sqlite3.Row
        try:
            return self.conn.execute(
                "SELECT * FROM crawl_visits ORDER BY profile, site_index, visit").fetchall()
        finally:
            self.conn.row_factory = None


def _short(value: str | None, room: int = 60) -> str:
    text = str(value)
    return text if len(text) <= room else text[: room - 1] + "…"


def plan_for(sites: Sequence[str], profiles: int, visits: int, links: int,
             partitioned: bool) -> Plan:
    """The plan of ``etagwatch crawl``: profiles are the clients crawl-1..N."""
    return Plan(tuple(sites), tuple(f"crawl-{n}" for n in range(1, profiles + 1)), visits,
                links, partitioned)
