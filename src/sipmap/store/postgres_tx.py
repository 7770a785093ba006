"""One PostgreSQL transaction, as a `Tx`: the SQL of each operation over models.

The same operations as SQLite's, with PostgreSQL's placeholders and idioms; which
connection, transaction and isolation level they run in is postgres.py's business.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..core.errors import InvalidPageToken
from ..core.models import M, Model
from ..core.paging import Page, PageRequest
from .schema import COLUMNS, KEYS, SCOPES, TABLES, from_row, to_db, to_row


def _where(where: dict[str, Any]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for name, value in where.items():
        if isinstance(value, list | tuple | set | frozenset):
            values = list(value)
            if not values:
                clauses.append("FALSE")
                continue
            clauses.append(f"{name} IN ({','.join(['%s'] * len(values))})")
            params.extend(to_db(v) for v in values)
        elif value is None:
            clauses.append(f"{name} IS NULL")
        else:
            clauses.append(f"{name} = %s")
            params.append(to_db(value))
    return (" AND ".join(clauses) or "TRUE"), params


_INSERT_SQL = {
    model: f"INSERT INTO {table} ({','.join(COLUMNS[model])}) "
    f"VALUES ({','.join(['%s'] * len(COLUMNS[model]))})"
    for model, table in TABLES.items()
}


def _update_sql(model: type[Any]) -> tuple[str, tuple[str, ...]]:
    keys = KEYS[model]
    cols = tuple(c for c in COLUMNS[model] if c not in keys)
    sql = (
        f"UPDATE {TABLES[model]} SET {','.join(f'{c} = %s' for c in cols)} "
        f"WHERE {' AND '.join(f'{k} = %s' for k in keys)}"
    )
    return sql, (*cols, *keys)


_UPDATE_SQL = {model: _update_sql(model) for model in TABLES}


class PostgresTx:
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def _select(
        self, model: type[M], where: dict[str, Any], tail: str = "", *extra: Any
    ) -> list[M]:
        clause, params = _where(where)
        sql = f"SELECT {','.join(COLUMNS[model])} FROM {TABLES[model]} WHERE {clause} {tail}"
        rows = self._conn.execute(sql, [*params, *extra]).fetchall()
        return [from_row(model, row) for row in rows]

    def insert(self, obj: Model) -> None:
        self._conn.execute(_INSERT_SQL[type(obj)], to_row(obj))

    def update(self, obj: Model) -> None:
        sql, names = _UPDATE_SQL[type(obj)]
        self._conn.execute(sql, [to_db(getattr(obj, name)) for name in names])

    def get(self, model: type[M], sid: str, **where: Any) -> M | None:
        rows = self._select(model, {"sid": sid, **where}, "LIMIT 1")
        return rows[0] if rows else None

    def find(self, model: type[M], **where: Any) -> list[M]:
        return self._select(model, where, "ORDER BY seq")

    def count(self, model: type[Model], **where: Any) -> int:
        clause, params = _where(where)
        row = self._conn.execute(
            f"SELECT count(*) FROM {TABLES[model]} WHERE {clause}", params
        ).fetchone()
        assert row is not None
        return int(row[0])

    def delete(self, model: type[Model], **where: Any) -> int:
        table = TABLES[model]
        clause, params = _where(where)
        self._conn.execute(
            f"INSERT INTO tombstones (tbl, sid, seq, scope) "
            f"SELECT %s, sid, seq, {SCOPES[model]} FROM {table} WHERE {clause} "
            "ON CONFLICT DO NOTHING",
            [table, *params],
        )
        return self._conn.execute(f"DELETE FROM {table} WHERE {clause}", params).rowcount

    def _seq_of(self, model: type[Any], sid: str, where: dict[str, Any]) -> int:
        table = TABLES[model]
        # The token's SID is matched on its own: merged into `where`, a filter on `sid`
        # (a subaccount listing accounts) would replace it.
        clause, params = _where(where)
        row = self._conn.execute(
            f"SELECT seq FROM {table} WHERE {clause} AND sid = %s", [*params, sid]
        ).fetchone()
        if row is None:
            sql = "SELECT max(seq) FROM tombstones WHERE tbl = %s AND sid = %s"
            args: list[Any] = [table, sid]
            if SCOPES[model] in where:
                sql += " AND scope = %s"
                args.append(where[SCOPES[model]])
            row = self._conn.execute(sql, args).fetchone()
        if row is None or row[0] is None:
            raise InvalidPageToken()
        return int(row[0])

    def page(self, model: type[M], request: PageRequest, **where: Any) -> Page[M]:
        size = request.page_size
        if request.after_sid is not None:
            seq = self._seq_of(model, request.after_sid, where)
            items = self._select(model, where, "AND seq > %s ORDER BY seq LIMIT %s", seq, size + 1)
        elif request.before_sid is not None:
            seq = self._seq_of(model, request.before_sid, where)
            items = self._select(model, where, "AND seq < %s ORDER BY seq DESC LIMIT %s", seq, size)
            items.reverse()
            # The item named by the token (or its successor) follows this page.
            return Page(items, request, has_next=True)
        else:
            items = self._select(
                model, where, "ORDER BY seq LIMIT %s OFFSET %s", size + 1, request.page * size
            )
        return Page(items[:size], request, len(items) > size)

    def get_setting(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO settings (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
