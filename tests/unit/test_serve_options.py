"""What `regsyncd serve` refuses before it starts anything."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.cli.serve import Daemon, ServeOptions, check_exposure, read_token_file


@pytest.mark.parametrize("listen", ["127.0.0.1:50051", "localhost:1", "[::1]:50051",
                                    "unix:/run/regsync.sock"])
def test_loopback_and_unix_sockets_need_no_token(listen: str) -> None:
    check_exposure(listen, None)


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051",
                                    "regsync.example.com:50051"])
def test_anything_wider_needs_a_token(listen: str) -> None:
    with pytest.raises(ConfigError, match="--token-file"):
        check_exposure(listen, None)
    with pytest.raises(ConfigError, match="--token-file"):
        check_exposure(listen, None, tls=True, plaintext=True)  # the flag never waives the token
    check_exposure(listen, "a-token", tls=True)


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051",
                                    "regsync.example.com:50051"])
def test_anything_wider_needs_tls_unless_plain_text_is_asked_for_loudly(
    listen: str, caplog: pytest.LogCaptureFixture
) -> None:
    """It accepted a token over plain text beyond loopback: anyone on the path could read it."""
    with pytest.raises(ConfigError, match="needs TLS .*--insecure-plaintext-api"):
        check_exposure(listen, "a-token")
    caplog.set_level(logging.WARNING)
    check_exposure(listen, "a-token", plaintext=True)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "INSECURE" in caplog.text and listen in caplog.text and "a-token" not in caplog.text


def test_loopback_needs_neither_tls_nor_the_flag(caplog: pytest.LogCaptureFixture) -> None:
    check_exposure("127.0.0.1:50051", "a-token")
    assert caplog.records == []


@pytest.mark.parametrize("content", ["", "\n", "  \t\n \n"])
def test_an_empty_token_file_is_an_error(tmp_path: Path, content: str) -> None:
    """An empty --token-file silently meant "no token"."""
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"--token-file {path} is empty"):
        read_token_file(str(path))


def test_a_token_file_is_read_without_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  s3cret \n")
    assert read_token_file(str(path)) == "s3cret"
    with pytest.raises(ConfigError, match="--token-file .*: No such file"):
        read_token_file(str(tmp_path / "none"))


def test_serve_with_an_empty_token_file_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from regsync.daemon.cli.main import main

    empty = tmp_path / "token"
    empty.write_text("\n")
    db = f"{tmp_path}/regsync.db"
    argv = ["serve", "--db", db, "--ui-port", "0", "--listen", "0.0.0.0:1",
            "--token-file", str(empty)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is empty" in err and "Traceback" not in err


@pytest.mark.parametrize("listen", ["50051", "0.0.0.0", "host:port"])
def test_a_malformed_address_is_told_as_such_not_as_a_missing_token(listen: str) -> None:
    with pytest.raises(ConfigError, match="expected host:port or unix:/path"):
        check_exposure(listen, None)


def test_serve_refuses_in_one_line(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from regsync.daemon.cli.main import main

    db = f"{tmp_path}/regsync.db"
    assert main(["serve", "--listen", "0.0.0.0:1", "--db", db, "--ui-port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("regsyncd: --listen 0.0.0.0:1:") and "Traceback" not in err


def test_a_tls_api_with_the_panel_is_refused_with_the_way_out(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from regsync.daemon.cli.main import main

    db = f"{tmp_path}/regsync.db"
    argv = ["serve", "--db", db, "--tls-cert", "c.pem", "--tls-key", "k.pem", "--ui-port", "8099"]
    assert main(argv) == 2
    assert "--ui-port 0" in capsys.readouterr().err


async def test_the_daemon_refuses_a_plain_text_token_beyond_loopback(tmp_path: Path) -> None:
    options = ServeOptions(db_path=str(tmp_path / "db"), listen="0.0.0.0:0", token="t0ken",
                           ui_port=None)
    raised: ConfigError | None = None
    with trio.move_on_after(10):  # today's code would serve: give up, and fail below
        try:
            await Daemon(options).run()
        except ConfigError as exc:
            raised = exc
    assert raised is not None and "needs TLS" in str(raised)


async def test_the_daemon_refuses_a_panel_beyond_loopback_without_a_login(
    tmp_path: Path
) -> None:
    """`serve --ui-host 0.0.0.0` without a token served the whole panel with no login."""
    options = ServeOptions(db_path=str(tmp_path / "db"), listen="127.0.0.1:0", ui_port=0,
                           ui_host="0.0.0.0")
    raised: ConfigError | None = None
    with trio.move_on_after(20):  # today's code would serve: give up, and fail below
        try:
            await Daemon(options).run()
        except ConfigError as exc:
            raised = exc
    assert raised is not None
    assert "--ui-host 0.0.0.0: beyond loopback the web panel needs a login" in str(raised)
    assert "--token-file" in str(raised)
