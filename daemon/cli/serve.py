"""`regsyncd serve`: the long-running daemon and its lifecycle.

Start-up order (each component started with `nursery.start`, so a failure, e.g. the port in use,
stops start-up with its own message): store -> executor -> scheduler -> gRPC API -> panel ->
READY -> resume interrupted executions. On PostgreSQL (a store other daemons may share) the
coordinator and the store feed start with the executor, and the scheduler runs only while this
daemon is the leader (cluster.py). SIGTERM/SIGINT: STOPPING, stop accepting calls, give
running executions a grace period, record what is left as interrupted, exit 0.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

import trio
from regsync.common.errors import SetupError

from ..api.server import ApiServer, ApiSettings, listen_host
from ..base.errors import ConfigError, StoreError
from ..config import load_config
from ..control.operations import VERSION, Control, apply_config
from ..engine.platform_memory import PlatformMemory, default_path
from ..monitor.endpoint import serve_metrics
from ..monitor.metrics import Metrics
from ..notify.delivery import Notifier
from ..runtime.cluster import (
    SCHEDULE_REFRESH,
    Coordinator,
    Leadership,
    lease_seconds,
    round_seconds,
)
from ..runtime.executor import Executor
from ..runtime.feed import StoreFeed
from ..runtime.hub import Hub
from ..runtime.logformat import ExecutionLog
from ..runtime.scheduler import Scheduler
from ..settings import GlobalSettings
from ..store.db import Database
from ..store.location import parse_location
from ..store.lock import exclusive_store
from ..store.notifications import upsert_notification
from .sdnotify import notify, watchdog_interval

log = logging.getLogger("regsync.serve")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    db_path: str
    listen: str = "127.0.0.1:50051"
    config_path: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    token: str | None = None
    max_running: int = 2
    shutdown_grace: float = 10.0
    ui_port: int | None = None  # the panel's HTTP port; None = no panel in this process
    # the panel speaks plain HTTP: loopback unless asked (put a TLS proxy in front otherwise)
    ui_host: str = "127.0.0.1"
    # more Host names the panel answers to (loopback names and a specific --ui-host always)
    ui_allowed_hosts: tuple[str, ...] = ()
    insecure_plaintext_api: bool = False  # a token over plain text beyond loopback: logged
    global_settings: GlobalSettings | None = None  # without a config file (default: defaults)
    metrics_listen: str | None = None  # `/metrics` for Prometheus; None = not served
    panel_url: str | None = None  # the panel as webhook receivers reach it (links in payloads)


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback IP literal; any other name may resolve anywhere."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(
    listen: str, token: str | None, *, tls: bool = False, plaintext: bool = False
) -> None:
    """Refuse an API beyond loopback without a token (whoever connects controls it) or without
    TLS (the token, and every password sent to the API, would cross the network readable),
    unless `plaintext` (`--insecure-plaintext-api`) says the operator wants that; then it is
    logged as a warning at every start.

    Raises:
        ConfigError: naming the address and the way out.
    """
    host = listen_host(listen)  # a malformed address is told as such, before any advice
    if host is None or is_loopback(host):
        return
    if not token:
        raise ConfigError(
            f"--listen {listen}: the API would accept anyone who can connect; set a token with "
            "--token-file or $REGSYNC_API_TOKEN (and TLS with --tls-cert/--tls-key)"
        )
    if tls:
        return
    if not plaintext:
        raise ConfigError(
            f"--listen {listen}: beyond loopback the API needs TLS (--tls-cert and --tls-key): "
            "its token and the registry passwords sent to it would cross the network in plain "
            "text (--insecure-plaintext-api accepts that, e.g. behind a TLS proxy)"
        )
    log.warning("INSECURE: the gRPC API on %s speaks plain text beyond loopback "
                "(--insecure-plaintext-api): its token and registry passwords can be read on "
                "the network", listen)


def read_token_file(path: str) -> str:
    """The API token in `path`, without surrounding whitespace.

    Raises:
        ConfigError: the file cannot be read, or holds nothing but whitespace (which meant
            "no token" without a word: a daemon open to anyone, or a token nobody can send).
    """
    try:
        with open(path, encoding="utf-8") as file:
            token = file.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"--token-file {path}: {reason}") from None
    if not token:
        raise ConfigError(f"--token-file {path} is empty: write the API token into it")
    return token


def default_db_path() -> str:
    """systemd's StateDirectory when set, else the XDG state directory."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return str(Path(state.split(":")[0]) / "regsync.db")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "regsync" / "regsync.db")


async def serve(options: ServeOptions) -> None:
    """The `regsyncd serve` command: run the daemon until SIGTERM or SIGINT."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            daemon: Daemon = await nursery.start(Daemon(options).run)
            notify("READY=1")
            interval = watchdog_interval()
            if interval:
                nursery.start_soon(_watchdog, interval)
            async for signum in signals:
                log.info("%s received: shutting down", signal.Signals(signum).name)
                break
            notify("STOPPING=1")
            await daemon.shutdown()
            nursery.cancel_scope.cancel()


class Daemon:
    """Every component of regsyncd, started in order; `run` hands itself to `nursery.start`."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.address = ""
        self._api_scope = trio.CancelScope()
        self._executor: Executor | None = None
        self.metrics_address = ""  # host:port of `/metrics` when served
        self.notifier: Notifier | None = None
        self._db: Database | None = None
        self._life = trio.CancelScope()
        self._ended = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED) -> None:
        options = self.options
        check_exposure(options.listen, options.token, tls=options.tls_cert is not None,
                       plaintext=options.insecure_plaintext_api)
        if options.ui_port is not None and options.token is None and not is_loopback(
                options.ui_host.strip("[]")):
            raise ConfigError(  # before anything starts (the panel itself checks again)
                f"--ui-host {options.ui_host}: beyond loopback the web panel needs a login, and "
                "anyone who reaches it would control regsyncd; start regsyncd with an API token "
                "(--token-file or $REGSYNC_API_TOKEN: the panel then asks each browser for it), "
                "or keep --ui-host on loopback")
        if options.tls_cert and options.ui_port is not None:
            # the panel dials the API in plain text: it would only ever say "cannot reach"
            raise ConfigError(
                "the web panel cannot reach an API served with TLS yet: add --ui-port 0, or "
                "serve the API without --tls-cert on loopback"
            )
        config = load_config(options.config_path) if options.config_path else None
        global_settings = (config.global_ if config is not None
                           else options.global_settings or GlobalSettings())
        try:
            # the file lock before the store is read; held until the store is closed
            with self._life, exclusive_store(parse_location(options.db_path)):
                db = self._db = Database.open(options.db_path)
                try:
                    me = await db.run(lambda repo: repo.register_daemon(socket.gethostname(),
                                                                         os.getpid()))
                    log.info("regsyncd: daemon %s on store %s", me, db.path)
                    if config is not None:
                        applied = await db.run(lambda repo: apply_config(repo, config))
                        log.info("applied %s: %s", options.config_path, applied)
                        if config.notifications:
                            await db.run(lambda repo: [upsert_notification(n)
                                                       for n in config.notifications])
                    await self._run(db, global_settings, task_status)
                finally:
                    db.close()
        finally:
            self._ended.set()

    async def shutdown(self) -> None:
        """Stop accepting calls, give executions the grace period, record the rest interrupted;
        returns once `run` has closed the store (a new Daemon may then open it)."""
        if self._ended.is_set():  # shut down already
            return
        self._api_scope.cancel()
        if self._executor is not None:
            await self._executor.shutdown(self.options.shutdown_grace)
        if self._db is not None:
            try:
                await self._db.run(lambda repo: repo.daemon_stopped())
            except StoreError as exc:  # the store is gone: nothing to record it in
                log.warning("could not record this daemon's stop: %s", exc)
            self._life.cancel()  # every component; then the store closes and its lock goes
            await self._ended.wait()

    async def _run(
        self, db: Database, global_settings: GlobalSettings, task_status: trio.TaskStatus[Daemon]
    ) -> None:
        options = self.options
        hub = Hub()
        hub.subscribe(ExecutionLog())
        shared = db.location.postgres  # other daemons may run this store's executions
        executor = self._executor = Executor(
            db, hub, global_settings=lambda: global_settings, max_running=options.max_running,
            platforms=_platform_memory(db), shared=shared,
        )
        scheduler = Scheduler(db, executor, refresh=SCHEDULE_REFRESH if shared else float("inf"))
        lease = lease_seconds()
        control = Control(db, executor, scheduler, hub, global_settings=lambda: global_settings,
                          store_location=db.path)
        api = ApiServer(control, ApiSettings(listen=options.listen, tls_cert=options.tls_cert,
                                             tls_key=options.tls_key, token=options.token))
        async with trio.open_nursery() as nursery:
            notifier = self.notifier = Notifier(db, panel_url=_panel_url(options))
            hub.subscribe(notifier.observe)
            await nursery.start(notifier.run)
            if options.metrics_listen:  # first: it sees every run
                self.metrics_address = await nursery.start(
                    serve_metrics, Metrics(VERSION), options.metrics_listen, hub, db)
            await nursery.start(executor.run)
            nursery.start_soon(_heartbeat, db)
            # resume what a crash interrupted before the scheduler adds catch-up runs (and
            # before this daemon claims anything: start-up takes its own rows for a crash's)
            for resumed in await control.resume_interrupted():
                log.info("resuming interrupted execution %s as %s", resumed.parent_id, resumed.id)
            if shared:
                await nursery.start(Coordinator(db, executor, lease=lease).run)
                await nursery.start(StoreFeed(db, hub, executor).run)
                leadership = Leadership(db, scheduler, poll=round_seconds(lease))
                control.fires_schedules = lambda: leadership.leading
                await nursery.start(leadership.run)
            else:
                await nursery.start(scheduler.run)
            self.address = await nursery.start(self._serve_api, api)
            if options.ui_port is not None:
                await nursery.start(_panel, self.address, options)
            log.info("regsyncd: API on %s, store %s", self.address, db.path)
            task_status.started(self)

    async def _serve_api(self, api: ApiServer, *, task_status: trio.TaskStatus[str]) -> None:
        with self._api_scope:
            await api.run(task_status=task_status)


async def _panel(
    address: str, options: ServeOptions, *, task_status: trio.TaskStatus[None]
) -> None:
    """The web panel in this process: a gRPC client of `address` like any other."""
    import importlib

    server = importlib.import_module("regsync.ui.server")  # the panel is a sibling package
    try:
        await server.run_panel(
            address, options.ui_port, login_required=options.token is not None,
            host=options.ui_host, allowed_hosts=options.ui_allowed_hosts,
            login_hint="start regsyncd with an API token (--token-file or $REGSYNC_API_TOKEN: "
                       "the panel then asks each browser for it), or keep --ui-host on loopback",
            task_status=task_status)
    except SetupError as exc:  # the panel's options are the daemon's config: exit 2, as ever
        raise ConfigError(str(exc)) from None


def _panel_url(options: ServeOptions) -> str | None:
    """Where webhook payloads link to: --panel-url, else the in-process panel's own address."""
    if options.panel_url:
        return options.panel_url
    if options.ui_port is None:
        return None
    host = f"[{options.ui_host}]" if ":" in options.ui_host else options.ui_host
    return f"http://{host}:{options.ui_port}"


def _platform_memory(db: Database) -> PlatformMemory:
    """Kept beside the store, so a restart does not cost a GET per excluded image again (with
    PostgreSQL, in this host's cache directory, as `regsyncd once` keeps it)."""
    if db.path == ":memory:":
        return PlatformMemory()
    if db.location.postgres:
        return PlatformMemory.load(default_path())
    return PlatformMemory.load(Path(db.path).parent / "platforms.json")


HEARTBEAT = 10.0  # seconds between `daemon.heartbeat` refreshes


async def _heartbeat(db: Database) -> None:
    """Keep this daemon's row fresh (who is up, and since when it was last seen)."""
    while True:
        await trio.sleep(HEARTBEAT)
        try:
            await db.run(lambda repo: repo.heartbeat())
        except StoreError as exc:
            log.warning("daemon heartbeat: %s", exc)


async def _watchdog(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await trio.sleep(interval)
