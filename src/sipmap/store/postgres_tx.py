"""One PostgreSQL transaction, as a `Tx`: sqltx's SQL in PostgreSQL's dialect.

Which connection, transaction and isolation level it runs in is postgres.py's business.
"""

from __future__ import annotations

from .sqltx import POSTGRES, SqlTx


class PostgresTx(SqlTx):
    dialect = POSTGRES
