"""The `Tx` operations in SQL, once, for every backend.

A backend's transaction class names its dialect — placeholder, literals, how to
insert-or-skip — and hands over a DB-API connection; everything else (filters, keyset
paging, tombstones) is written here. Statement strings are built once per shape and
kept: the same few repeat on every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any, ClassVar, Protocol, TypeVar

from ..core.errors import InvalidPageToken
from ..core.models import M, Model
from ..core.paging import Page, PageRequest
from .schema import COLUMNS, KEYS, SCOPES, SID_ROW_READERS, TABLES, from_row, to_db, to_row


class Connection(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...


class CountsChanges(Protocol):
    """A connection that knows how many rows it has changed (APSW's does)."""

    def total_changes(self) -> int: ...

    @property
    def in_transaction(self) -> bool: ...


@dataclass(frozen=True)
class Dialect:
    param: str  # placeholder
    true: str
    false: str
    insert_ignore: str  # "INSERT ... {rest}" that skips rows violating a unique key
    name: str
    now: str  # the current time in whole seconds since the epoch

    @cached_property
    def select_by_sid(self) -> dict[type[Any], str]:
        """Per model, the statement of a lookup by SID: a row cache's miss, on every
        fetch of a row not cached, so it is written once rather than worked out. It
        selects every column but the SID it is given (SID_ROW_READERS)."""
        return {
            model: f"SELECT {','.join(COLUMNS[model][1:])} FROM {table} "
            f"WHERE sid = {self.param} LIMIT 1"
            for model, table in TABLES.items()
        }


SQLITE = Dialect(
    "?",
    "1",
    "0",
    "INSERT OR IGNORE INTO {rest}",
    "sqlite",
    "CAST(strftime('%s', 'now') AS INTEGER)",
)
POSTGRES = Dialect(
    "%s",
    "TRUE",
    "FALSE",
    "INSERT INTO {rest} ON CONFLICT DO NOTHING",
    "postgres",
    "CAST(extract(epoch FROM now()) AS BIGINT)",
)

F = TypeVar("F")  # what a caller tracks each job by (e.g. its future)

_CLAUSES: dict[tuple[str, tuple[str, ...]], str] = {}
_STATEMENTS: dict[tuple[str, str, type[Any], str, str], str] = {}
MAX_CACHED_STATEMENTS = 1024


class SqlTx:
    dialect: ClassVar[Dialect]

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _changed(self, cursor: Any) -> int:
        """How many rows the statement `cursor` ran changed (DB-API's rowcount)."""
        return int(cursor.rowcount)

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Every row `sql` reads, the statement ended."""
        return self._conn.execute(sql, params).fetchall()  # type: ignore[no-any-return]

    # -- statement building ---------------------------------------------------

    def _where(self, where: dict[str, Any]) -> tuple[str, list[Any]]:
        p = self.dialect.param
        # Hot path: every value a plain string (SIDs) — one cached clause per key set.
        if all(type(v) is str for v in where.values()):
            key = (self.dialect.name, tuple(where))
            clause = _CLAUSES.get(key)
            if clause is None:
                clause = " AND ".join(f"{n} = {p}" for n in where) or self.dialect.true
                _CLAUSES[key] = clause
            return clause, list(where.values())
        clauses: list[str] = []
        params: list[Any] = []
        for name, value in where.items():
            if isinstance(value, list | tuple | set | frozenset):
                values = list(value)
                if not values:
                    clauses.append(self.dialect.false)
                    continue
                clauses.append(f"{name} IN ({','.join([p] * len(values))})")
                params.extend(to_db(v) for v in values)
            elif value is None:
                clauses.append(f"{name} IS NULL")
            else:
                clauses.append(f"{name} = {p}")
                params.append(to_db(value))
        return (" AND ".join(clauses) or self.dialect.true), params

    def _statement(self, kind: str, model: type[Any], clause: str = "", tail: str = "") -> str:
        # The model itself, not its table's name: a key made of new strings would
        # hash them anew on every call.
        key = (self.dialect.name, kind, model, clause, tail)
        sql = _STATEMENTS.get(key)
        if sql is None:
            sql = self._build(kind, model, clause, tail)
            if len(_STATEMENTS) < MAX_CACHED_STATEMENTS:
                _STATEMENTS[key] = sql
        return sql

    def _build(self, kind: str, model: type[Any], clause: str, tail: str) -> str:
        p, table, cols = self.dialect.param, TABLES[model], COLUMNS[model]
        if kind == "select":
            return f"SELECT {','.join(cols)} FROM {table} WHERE {clause} {tail}"
        if kind == "insert":
            return f"INSERT INTO {table} ({','.join(cols)}) VALUES ({','.join([p] * len(cols))})"
        if kind == "update":
            keys = KEYS[model]
            sets = ",".join(f"{c} = {p}" for c in cols if c not in keys)
            return f"UPDATE {table} SET {sets} WHERE {' AND '.join(f'{k} = {p}' for k in keys)}"
        raise ValueError(kind)

    # -- Tx -------------------------------------------------------------------

    def _select(
        self, model: type[M], where: dict[str, Any], tail: str = "", *extra: Any
    ) -> list[M]:
        clause, params = self._where(where)
        sql = self._statement("select", model, clause, tail)
        return [from_row(model, row) for row in self._rows(sql, [*params, *extra])]

    def insert(self, obj: Model) -> None:
        self._conn.execute(self._statement("insert", type(obj)), to_row(obj))

    def update(self, obj: Model) -> None:
        model = type(obj)
        keys = KEYS[model]
        names = [*(c for c in COLUMNS[model] if c not in keys), *keys]
        self._conn.execute(
            self._statement("update", model), [to_db(getattr(obj, n)) for n in names]
        )

    def get(self, model: type[M], sid: str, **where: Any) -> M | None:
        if not where:
            found = self._rows(self.dialect.select_by_sid[model], (sid,))
            return SID_ROW_READERS[model](sid, found[0]) if found else None
        rows = self._select(model, {"sid": sid, **where}, "LIMIT 1")
        return rows[0] if rows else None

    def find(self, model: type[M], **where: Any) -> list[M]:
        return self._select(model, where, "ORDER BY seq")

    def _scan_sql(self, model: type[Model], columns: Sequence[str]) -> str:
        unknown = set(columns) - set(COLUMNS[model])
        if unknown or not columns:
            raise ValueError(f"not columns of {TABLES[model]}: {sorted(unknown)}")
        return f"SELECT {','.join(columns)} FROM {TABLES[model]} ORDER BY seq"

    def scan(self, model: type[Model], columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        # SQLite's cursor steps through the result as it is iterated.
        return iter(self._conn.execute(self._scan_sql(model, columns)))

    def count(self, model: type[Model], **where: Any) -> int:
        clause, params = self._where(where)
        row = self._conn.execute(
            f"SELECT count(*) FROM {TABLES[model]} WHERE {clause}", params
        ).fetchone()
        return int(row[0])

    def delete(self, model: type[Model], **where: Any) -> int:
        """Delete matching rows, remembering their place so page tokens naming them still work."""
        table, p = TABLES[model], self.dialect.param
        clause, params = self._where(where)
        rest = "tombstones (tbl, sid, seq, scope, deleted_at) "
        rest += f"SELECT {p}, sid, seq, {SCOPES[model]}, {self.dialect.now} "
        rest += f"FROM {table} WHERE {clause}"
        self._conn.execute(self.dialect.insert_ignore.format(rest=rest), [table, *params])
        return self._changed(self._conn.execute(f"DELETE FROM {table} WHERE {clause}", params))

    def _seq_of(self, model: type[Any], sid: str, where: dict[str, Any]) -> int:
        table, p = TABLES[model], self.dialect.param
        # The token's SID is matched on its own: merged into `where`, a filter on `sid`
        # (a subaccount listing accounts) would replace it.
        clause, params = self._where(where)
        row = self._conn.execute(
            f"SELECT seq FROM {table} WHERE {clause} AND sid = {p}", [*params, sid]
        ).fetchone()
        if row is None:
            # A deleted item keeps its place, but only within the list it stood in.
            sql = f"SELECT max(seq) FROM tombstones WHERE tbl = {p} AND sid = {p}"
            args: list[Any] = [table, sid]
            if SCOPES[model] in where:
                sql += f" AND scope = {p}"
                args.append(where[SCOPES[model]])
            row = self._conn.execute(sql, args).fetchone()
        if row is None or row[0] is None:
            raise InvalidPageToken()
        return int(row[0])

    def page(self, model: type[M], request: PageRequest, **where: Any) -> Page[M]:
        """One page in creation order (`seq`): after or before a token's item, else by offset."""
        size, p = request.page_size, self.dialect.param
        if request.after_sid is not None:
            seq = self._seq_of(model, request.after_sid, where)
            tail = f"AND seq > {p} ORDER BY seq LIMIT {p}"
            items = self._select(model, where, tail, seq, size + 1)
        elif request.before_sid is not None:
            seq = self._seq_of(model, request.before_sid, where)
            tail = f"AND seq < {p} ORDER BY seq DESC LIMIT {p}"
            items = self._select(model, where, tail, seq, size)
            items.reverse()
            # The item named by the token (or its successor) follows this page.
            return Page(items, request, has_next=True)
        else:
            tail = f"ORDER BY seq LIMIT {p} OFFSET {p}"
            items = self._select(model, where, tail, size + 1, request.page * size)
        return Page(items[:size], request, len(items) > size)

    def prune_tombstones(self, deleted_before: int) -> int:
        p = self.dialect.param
        sql = f"DELETE FROM tombstones WHERE deleted_at < {p}"
        return self._changed(self._conn.execute(sql, (deleted_before,)))

    def overlaps_outside_family(self, network: int, prefix_len: int, family_sid: str) -> bool:
        # Networks nest or are disjoint, so an overlapping network either starts inside
        # ours with a prefix at least as long (one index range), or contains ours: then
        # it is ours masked to its own, shorter, prefix (one index probe per length).
        # The family's accounts are read once (the subquery is not correlated); a row
        # is then judged from the index alone (network, prefix_len, account_sid).
        p = self.dialect.param
        foreign = (
            "SELECT 1 FROM source_ip_mappings m WHERE m.account_sid NOT IN "
            f"(SELECT sid FROM accounts WHERE owner_account_sid = {p}) AND "
        )
        last = network | ((1 << (32 - prefix_len)) - 1)
        inside = f"m.network BETWEEN {p} AND {p} AND m.prefix_len >= {p}"
        if self._exists(foreign + inside, [family_sid, network, last, prefix_len]):
            return True
        if prefix_len == 0:
            return False
        probes = " OR ".join([f"(m.network = {p} AND m.prefix_len = {p})"] * prefix_len)
        params: list[Any] = [family_sid]
        for length in range(prefix_len):
            params += [network & ~((1 << (32 - length)) - 1) & 0xFFFFFFFF, length]
        return self._exists(f"{foreign}({probes})", params)

    def _exists(self, query: str, params: list[Any]) -> bool:
        return self._conn.execute(query + " LIMIT 1", params).fetchone() is not None

    def get_setting(self, key: str) -> str | None:
        p = self.dialect.param
        row = self._conn.execute(f"SELECT value FROM settings WHERE key = {p}", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        p = self.dialect.param
        self._conn.execute(
            f"INSERT INTO settings (key, value) VALUES ({p}, {p}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def run_isolated(
    conn: Connection,
    tx: SqlTx,
    jobs: Iterable[tuple[Callable[[Any], Any], F]],
    counter: CountsChanges | None = None,
    until: float | None = None,
) -> list[tuple[F, Any, BaseException | None]]:
    """Run write functions inside one open transaction, isolated from each other's
    failures: a job that raises leaves nothing behind and its exception becomes its
    outcome; the others keep their writes.

    `until` (a `time.perf_counter()` value): stop after the job that ends past it.
    The outcomes are then those of the first jobs only, and the rest is the caller's
    to run (in the same transaction, or not at all).

    Isolation is a SAVEPOINT per job (this spelling is both SQLite's and
    PostgreSQL's), unless the connection counts the rows it has changed (`counter`,
    SQLite's). Then jobs run bare, since nearly every failure is a
    rule checked before writing and a job that changed nothing has nothing to undo;
    only when a job fails after writing is the batch rolled back and run again with
    savepoints. Jobs may therefore run twice: that is Store.write's contract.
    """
    jobs = list(jobs)
    if counter is None:
        return _each_in_a_savepoint(conn, tx, jobs, until)
    conn.execute("SAVEPOINT batch")
    outcomes: list[tuple[F, Any, BaseException | None]] = []
    for fn, tag in jobs:
        before = counter.total_changes()
        try:
            result = fn(tx)
        except BaseException as exc:
            if counter.total_changes() == before:
                # Nothing to undo (a failed statement undoes itself) — unless the
                # error ended the transaction (SQLite does, on a full disk, say).
                if not counter.in_transaction:
                    raise
                outcomes.append((tag, None, exc))
            else:
                conn.execute("ROLLBACK TO SAVEPOINT batch")
                conn.execute("RELEASE SAVEPOINT batch")
                # Again, each in a savepoint: every job so far, or all of them.
                redo = jobs if until is None else jobs[: len(outcomes) + 1]
                return _each_in_a_savepoint(conn, tx, redo)
        else:
            outcomes.append((tag, result, None))
        if until is not None and time.perf_counter() > until:
            break
    conn.execute("RELEASE SAVEPOINT batch")
    return outcomes


def _each_in_a_savepoint(
    conn: Connection,
    tx: SqlTx,
    jobs: list[tuple[Callable[[Any], Any], F]],
    until: float | None = None,
) -> list[tuple[F, Any, BaseException | None]]:
    outcomes: list[tuple[F, Any, BaseException | None]] = []
    for fn, tag in jobs:
        conn.execute("SAVEPOINT job")
        try:
            result = fn(tx)
        except BaseException as exc:  # the job's own failure, reported to its caller
            conn.execute("ROLLBACK TO SAVEPOINT job")
            conn.execute("RELEASE SAVEPOINT job")
            outcomes.append((tag, None, exc))
        else:
            conn.execute("RELEASE SAVEPOINT job")
            outcomes.append((tag, result, None))
        if until is not None and time.perf_counter() > until:
            break
    return outcomes


def pending_migrations(conn: Connection, dialect: Dialect) -> list[tuple[int, str]]:
    """(version, script) of each numbered migration of `dialect` not yet applied, in
    order; creates the table that records them if it is missing."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    folder = resources.files("sipmap.store") / "migrations" / dialect.name
    scripts = sorted(
        (int(entry.name.split("_", 1)[0]), entry)
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return [(version, entry.read_text()) for version, entry in scripts if version not in done]
