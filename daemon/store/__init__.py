"""The daemon's SQLite store: registries, tasks, executions, tag results and log lines.

db.Database        one SQLite connection on one thread; `await db.run(fn)` from trio
repo.Repo          the operations `fn` calls: records in, records out, one transaction
models             peewee tables and the row <-> record conversions
migrations         the ordered schema steps and `migrate`
"""

from __future__ import annotations

from .db import MEMORY, Database
from .repo import Repo

__all__ = ["MEMORY", "Database", "Repo"]
