"""What a daemon learns about a target registry's uploads: first verdict wins, one probe."""

from __future__ import annotations

from regsync.daemon.engine.upload_memory import SelfMount, UploadMemory


def test_a_verdict_once_learnt_stays() -> None:
    memory = UploadMemory()
    assert memory.self_mount("dst") is SelfMount.UNKNOWN
    memory.learn_self_mount("dst", SelfMount.HEAD_FIRST)
    memory.learn_self_mount("dst", SelfMount.WORKS)  # a later answer cannot flip it back
    assert memory.self_mount("dst") is SelfMount.HEAD_FIRST
    assert memory.self_mount("other") is SelfMount.UNKNOWN


def test_one_probe_per_registry_until_a_verdict() -> None:
    memory = UploadMemory()
    assert memory.claim_probe("dst")
    assert not memory.claim_probe("dst")  # one in flight
    memory.release_probe("dst")
    assert memory.claim_probe("dst")  # that probe failed: the next commit may ask again
    memory.release_probe("dst")
    memory.learn_self_mount("dst", SelfMount.WORKS)
    assert not memory.claim_probe("dst")


def test_one_piece_refusal_is_remembered_per_registry() -> None:
    memory = UploadMemory()
    memory.refuses_one_piece("dst")
    assert memory.in_parts("dst") and not memory.in_parts("src")
