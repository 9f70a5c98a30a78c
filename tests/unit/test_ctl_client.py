"""What a gRPC status means to a regsyncctl user, where the token comes from, and that it hides."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from regsync.ctl.client import (
    EXIT_AUTH,
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CtlError,
    Daemon,
    Secret,
    Target,
    resolve_token,
    status_error,
)

TARGET = Target(address="10.0.0.1:50051", timeout=7)


def explain(code: grpc.StatusCode, details: str = "", *, reached: bool = False,
            target: Target = TARGET) -> CtlError:
    return status_error(code, details, target=target, reached=reached)


def test_unavailable_names_the_address_and_exits_2() -> None:
    error = explain(grpc.StatusCode.UNAVAILABLE, "Connection refused",
                    target=Target(address="10.0.0.1:50051", tls=True))
    assert error.exit_code == EXIT_UNREACHABLE
    assert error.message == "cannot reach regsyncd at 10.0.0.1:50051: Connection refused"


def test_unavailable_over_plain_text_suggests_tls() -> None:
    error = explain(grpc.StatusCode.UNAVAILABLE, "Socket closed")
    assert error.message == ("cannot reach regsyncd at 10.0.0.1:50051: Socket closed"
                             " (if it serves TLS, add --tls or --ca-file)")


def test_a_deadline_is_unreachable_only_without_a_connection() -> None:
    first = explain(grpc.StatusCode.DEADLINE_EXCEEDED)
    assert first.exit_code == EXIT_UNREACHABLE
    assert first.message == "cannot reach regsyncd at 10.0.0.1:50051: no answer within 7 s"
    later = explain(grpc.StatusCode.DEADLINE_EXCEEDED, reached=True)
    assert later.exit_code == EXIT_FAILED
    assert "--timeout" in later.message


@pytest.mark.parametrize("code", [
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION,
])
def test_refusals_show_the_daemons_message_and_exit_1(code: grpc.StatusCode) -> None:
    error = explain(code, "task.tags.include[1]: bad regex '('")
    assert (error.exit_code, error.message) == (EXIT_FAILED, "task.tags.include[1]: bad regex '('")


def test_unauthenticated_tells_how_to_pass_a_token() -> None:
    missing = explain(grpc.StatusCode.UNAUTHENTICATED, "missing token")
    assert missing.exit_code == EXIT_AUTH
    assert "--token-file" in missing.message and "REGSYNC_API_TOKEN" in missing.message
    wrong = explain(grpc.StatusCode.UNAUTHENTICATED,
                    target=Target(token=Secret("hunter2-token")))
    assert wrong.exit_code == EXIT_AUTH
    assert "rejected the API token" in wrong.message
    assert "hunter2" not in wrong.message


def test_other_failures_say_the_daemon_failed() -> None:
    assert explain(grpc.StatusCode.INTERNAL, "db locked").message == (
        "regsyncd at 10.0.0.1:50051 failed: db locked")
    assert "does not support" in explain(grpc.StatusCode.UNIMPLEMENTED).message


def test_token_precedence(tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text("from-file\n")
    env = {"REGSYNC_API_TOKEN": "from-env"}
    assert resolve_token("from-flag", str(file), env) == Secret("from-flag")
    assert resolve_token(None, str(file), env) == Secret("from-file")
    assert resolve_token(None, None, env) == Secret("from-env")
    assert resolve_token(None, None, {}) is None
    file.write_text("  \n")
    with pytest.raises(CtlError, match="empty") as info:
        resolve_token(None, str(file), env)
    assert info.value.exit_code == EXIT_USAGE


def test_the_token_never_shows_in_reprs() -> None:
    target = Target(token=Secret("hunter2-token"))
    for text in (repr(target), str(target), repr(target.token), str(target.token),
                 f"{target.token}"):
        assert "hunter2" not in text


def test_metadata_carries_the_bearer_token_only_when_there_is_one() -> None:
    with_token = Daemon(Target(address="127.0.0.1:1", token=Secret("abc")))
    without = Daemon(Target(address="127.0.0.1:1"))
    try:
        assert with_token.metadata() == (("authorization", "Bearer abc"),)
        assert without.metadata() == ()
    finally:
        with_token.close()
        without.close()


def test_missing_server_ca_file_is_a_usage_error() -> None:
    with pytest.raises(CtlError, match="--ca-file /nonexistent.pem") as info:
        Daemon(Target(address="127.0.0.1:1", ca_file="/nonexistent.pem"))
    assert info.value.exit_code == EXIT_USAGE
