"""Serve the panel: uvicorn with NiceGUI's app, in its own thread with its own asyncio loop.

`run_panel` is a trio task (`nursery.start(run_panel, ...)` in `regsyncd serve`): it binds the
port itself, so "address in use" fails start-up with a clear message, starts uvicorn on that
socket in a thread (uvicorn installs no signal handlers off the main thread: trio keeps them),
reports the bound port, and stops uvicorn when cancelled. The panel is a gRPC client of the API
address like any other; it holds no token of its own (see session.py). Every request passes
`guard.PanelGuard` first (Host names, Origin); beyond loopback the panel needs a login.
"""

from __future__ import annotations

import logging
import socket
import threading

import trio
from nicegui import core
from nicegui.middlewares import RedirectWithPrefixMiddleware, SetCacheControlMiddleware
from nicegui.server import CustomServerConfig, Server
from regsync.common.errors import SetupError

from . import guard
from .app import TITLE, register
from .session import PanelSettings

log = logging.getLogger("regsync.ui")
STOP_GRACE = 2  # seconds uvicorn may take to close browser connections
_lock = threading.Lock()


def split_address(api_address: str) -> tuple[str, int | None]:
    """'127.0.0.1:50051' -> ('127.0.0.1', 50051); '[::1]:5' -> ('::1', 5); 'unix:/p' -> ('', None)."""
    if api_address.startswith("unix:"):
        return "", None
    host, _, port = api_address.rpartition(":")
    host = host.strip("[]")
    return host, int(port) if port.isdigit() else None


def dial_address(api_address: str) -> str:
    """Where the panel connects: a wildcard listen address is reached through loopback."""
    host, port = split_address(api_address)
    if port is None:
        return api_address
    if host in ("0.0.0.0", ""):
        return f"127.0.0.1:{port}"
    if host == "::":
        return f"[::1]:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or SetupError naming the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise SetupError(f"web panel: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def configure() -> None:
    """What `ui.run` would set up, minus starting a server (we own the thread and socket)."""
    core.app.config.add_run_config(
        reload=False, title=TITLE, viewport="width=device-width, initial-scale=1",
        favicon=None, dark=False, language=None, binding_refresh_interval=0.1,
        reconnect_timeout=3.0, message_history_length=1000, tailwind=True, unocss=None,
        prod_js=True, show_welcome_message=False, markdown=False,
    )
    core.root = None
    present = {getattr(m, "cls", None) for m in core.app.user_middleware}
    # PanelGuard last: Starlette runs the last added first, so it sees every request untouched
    for middleware in (RedirectWithPrefixMiddleware, SetCacheControlMiddleware, guard.PanelGuard):
        if middleware not in present:  # a second panel in this process reuses the first's
            core.app.add_middleware(middleware)


def make_server(settings: PanelSettings, sock: socket.socket) -> Server:
    register(settings)
    configure()
    host, port = sock.getsockname()[:2]
    config = CustomServerConfig(core.app, host=host, port=port, log_level="warning",
                                ws="wsproto", timeout_graceful_shutdown=STOP_GRACE)
    server = Server(config)
    Server.instance = server
    return server


async def run_panel(api_address: str, port: int, *, login_required: bool,
                    host: str = "127.0.0.1", allowed_hosts: tuple[str, ...] = (),
                    login_hint: str = "require an API token, or serve the panel on loopback",
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the panel for the API at `api_address` on `host:port` until cancelled; started()
    gets the port. It serves plain HTTP where people type API tokens: loopback unless asked.

    `login_required`: the daemon wants an API token (the panel then opens on its login page);
    each browser tab signs in with its own, the panel never holds the daemon's. Beyond loopback
    it is required (`login_hint` says how to get one). `allowed_hosts`: Host names it answers
    to beyond the loopback names and `host` itself.

    Raises:
        SetupError: no login beyond loopback, a bad allowed host, the port cannot be bound, a
            panel already runs in this process, or the server failed to start.
    """
    guard.check_exposure(host, login_required=login_required, how=login_hint)
    policy = guard.host_policy(host, allowed_hosts)
    if host.strip("[]") in guard.WILDCARDS and not allowed_hosts:
        log.warning("web panel on %s answers only to the Host names %s: add an allowed host "
                    "name for each name browsers use to reach it", host,
                    ", ".join(sorted(policy.names)))
    if not _lock.acquire(blocking=False):
        raise SetupError("web panel: one panel per process (NiceGUI's app is global)")
    try:
        sock = bind(host, port)
        with sock:
            settings = PanelSettings(api_address=dial_address(api_address),
                                     login_required=login_required,
                                     exposed=not guard.is_loopback(host))
            guard.install(policy)
            await _serve(make_server(settings, sock), sock, task_status)
    finally:
        _lock.release()


async def _serve(server: Server, sock: socket.socket, task_status: trio.TaskStatus[int]) -> None:
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="regsync-panel", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise SetupError("web panel: the HTTP server failed to start (see the log)")
            await trio.sleep(0.02)
        bound: int = sock.getsockname()[1]
        log.info("web panel on http://%s:%d/", *sock.getsockname()[:2])
        task_status.started(bound)
        while thread.is_alive():
            await trio.sleep(0.5)
        log.error("web panel stopped unexpectedly; the daemon carries on without it")
    finally:
        server.should_exit = True
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(thread.join, STOP_GRACE + 5)
