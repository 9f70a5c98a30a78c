"""The SQLite store's lock (one daemon per file), in one process: flock locks belong to an open
file, so a second open of the same lock file conflicts as a second process would."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from regsync.daemon.base.errors import ConfigError, StoreInUseError
from regsync.daemon.store.location import parse_location
from regsync.daemon.store.lock import exclusive_store, lock_path


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    location = parse_location(str(tmp_path / "regsync.db"))
    with exclusive_store(location):
        with pytest.raises(StoreInUseError) as caught, exclusive_store(location):
            pass
        message = str(caught.value)
        assert f"the store {tmp_path / 'regsync.db'} is in use by another regsyncd" in message
        assert f"(pid {os.getpid()})" in message and "another --db" in message
        assert isinstance(caught.value, ConfigError)  # exit 2: nothing was contacted
    with exclusive_store(location):  # released with the first holder
        pass
    assert stat.S_IMODE(os.stat(lock_path(location)).st_mode) == 0o600


def test_another_file_beside_it_is_not_locked(tmp_path: Path) -> None:
    with exclusive_store(parse_location(str(tmp_path / "a.db"))), exclusive_store(
        parse_location(str(tmp_path / "b.db"))
    ):
        pass


@pytest.mark.parametrize("where", [":memory:", "postgresql://u@db.example/regsync"])
def test_memory_and_postgresql_take_no_file_lock(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with exclusive_store(parse_location(where)), exclusive_store(parse_location(where)):
        pass
    assert list(tmp_path.iterdir()) == []
