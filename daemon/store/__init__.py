"""The daemon's store (an SQLite file, or PostgreSQL): registries, tasks, executions, tag results and log lines.

db.Database        one connection on one thread; `await db.run(fn)` from trio
location           `--db`: a file path or a postgresql:// URL (printed without its password)
postgres           PostgreSQL's connection and its failures
repo.Repo          the operations `fn` calls: records in, records out, one transaction
models             peewee tables and the row <-> record conversions
migrations         the ordered schema steps and `migrate`
"""

from __future__ import annotations

from .db import Database
from .location import MEMORY
from .repo import Repo

__all__ = ["MEMORY", "Database", "Repo"]
