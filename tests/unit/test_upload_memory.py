"""What a daemon learns about a target registry's uploads: a refused one-piece body, once."""

from __future__ import annotations

from regsync.daemon.engine.upload_memory import UploadMemory


def test_one_piece_refusal_is_remembered_per_registry() -> None:
    memory = UploadMemory()
    assert not memory.in_parts("dst")
    memory.refuses_one_piece("dst")
    assert memory.in_parts("dst") and not memory.in_parts("src")
