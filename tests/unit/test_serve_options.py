"""What `regsyncd serve` refuses before it starts anything."""

from __future__ import annotations

import pytest
from regsync.daemon.errors import ConfigError
from regsync.daemon.serve import check_exposure


@pytest.mark.parametrize("listen", ["127.0.0.1:50051", "localhost:1", "[::1]:50051",
                                    "unix:/run/regsync.sock"])
def test_loopback_and_unix_sockets_need_no_token(listen: str) -> None:
    check_exposure(listen, None)


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051",
                                    "regsync.example.com:50051"])
def test_anything_wider_needs_a_token(listen: str) -> None:
    with pytest.raises(ConfigError, match="--token-file"):
        check_exposure(listen, None)
    check_exposure(listen, "a-token")


@pytest.mark.parametrize("listen", ["50051", "0.0.0.0", "host:port"])
def test_a_malformed_address_is_told_as_such_not_as_a_missing_token(listen: str) -> None:
    with pytest.raises(ConfigError, match="expected host:port or unix:/path"):
        check_exposure(listen, None)


def test_serve_refuses_in_one_line(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from regsync.daemon.main import main

    db = f"{tmp_path}/regsync.db"
    assert main(["serve", "--listen", "0.0.0.0:1", "--db", db, "--ui-port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("regsyncd: --listen 0.0.0.0:1:") and "Traceback" not in err


def test_a_tls_api_with_the_panel_is_refused_with_the_way_out(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from regsync.daemon.main import main

    db = f"{tmp_path}/regsync.db"
    argv = ["serve", "--db", db, "--tls-cert", "c.pem", "--tls-key", "k.pem", "--ui-port", "8099"]
    assert main(argv) == 2
    assert "--ui-port 0" in capsys.readouterr().err
