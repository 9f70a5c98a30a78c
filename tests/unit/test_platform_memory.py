"""The platform memory: content-addressed facts kept across `regsyncd once` runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from regsync.daemon.engine.platform_memory import PlatformMemory, default_path
from regsync.daemon.values.platform import Platform

ARM = Platform("linux", "arm", "v7")


def test_saved_memory_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "platforms.json"
    memory = PlatformMemory.load(path)  # no file yet: empty
    assert memory.get("sha256:a") is None
    memory.remember("sha256:a", ARM)
    memory.save()
    assert PlatformMemory.load(path).get("sha256:a") == ARM
    assert [p.name for p in path.parent.iterdir()] == ["platforms.json"]  # no temp file left


def test_nothing_learnt_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "platforms.json"
    memory = PlatformMemory.load(path)
    memory.save()
    assert not path.exists()
    memory.remember("sha256:a", ARM)
    memory.save()
    path.write_text("{}")
    memory.remember("sha256:a", ARM)  # known already: not a change
    memory.save()
    assert path.read_text() == "{}"


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"sha256:a": 3, "sha256:b": "x"}'])
def test_a_damaged_file_is_ignored(tmp_path: Path, content: str) -> None:
    path = tmp_path / "platforms.json"
    path.write_text(content)
    memory = PlatformMemory.load(path)
    assert memory.get("sha256:a") is None and memory.get("sha256:b") is None
    memory.remember("sha256:c", ARM)
    memory.save()
    assert json.loads(path.read_text()) == {"sha256:c": "linux/arm/v7"} | (
        {"sha256:b": "x"} if content.startswith("{") else {}
    )


def test_the_oldest_entries_go_first_beyond_the_limit() -> None:
    memory = PlatformMemory(limit=2)
    for name in "abc":
        memory.remember(f"sha256:{name}", ARM)
    assert [memory.get(f"sha256:{n}") for n in "abc"] == [None, ARM, ARM]


def test_an_unwritable_cache_is_only_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    memory = PlatformMemory(blocker / "platforms.json")
    memory.remember("sha256:a", ARM)
    memory.save()
    assert "could not save the platform cache" in caplog.text


def test_default_path_follows_xdg_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "regsync" / "platforms.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_path() == Path.home() / ".cache" / "regsync" / "platforms.json"
