"""`regsyncd serve`: the long-running daemon and its lifecycle.

Start-up order (each component started with `nursery.start`, so a failure, e.g. the port in use,
stops start-up with its own message): store -> executor -> scheduler -> gRPC API -> panel ->
READY -> resume interrupted executions. SIGTERM/SIGINT: STOPPING, stop accepting calls, give
running executions a grace period, record what is left as interrupted, exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import trio

from .api.server import ApiServer
from .config import GlobalSettings, load_config
from .executor import Executor
from .hub import Hub
from .scheduler import Scheduler
from .sdnotify import notify, watchdog_interval
from .service import Control, apply_config
from .store.db import Database

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


def default_db_path() -> str:
    """systemd's StateDirectory when set, else the XDG state directory."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return str(Path(state.split(":")[0]) / "regsync.db")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "regsync" / "regsync.db")


async def serve(options: ServeOptions) -> None:
    global_settings = GlobalSettings()
    config = load_config(options.config_path) if options.config_path else None
    if config is not None:
        global_settings = config.global_
    db = Database.open(options.db_path)
    try:
        if config is not None:
            applied = db.run_sync(lambda repo: apply_config(repo, config))
            log.info("applied %s: %s", options.config_path, applied)
        await _run(db, options, global_settings)
    finally:
        db.close()


async def _run(db: Database, options: ServeOptions, global_settings: GlobalSettings) -> None:
    hub = Hub()
    executor = Executor(db, hub, global_settings=lambda: global_settings,
                        max_running=options.max_running)
    scheduler = Scheduler(db, executor)
    control = Control(db, executor, scheduler, hub, global_settings=lambda: global_settings,
                      store_location=options.db_path)
    api = ApiServer(control, listen=options.listen, tls_cert=options.tls_cert,
                    tls_key=options.tls_key, token=options.token)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(executor.run)
            await nursery.start(scheduler.run)
            api_scope = trio.CancelScope()

            async def serve_api(task_status: trio.TaskStatus[None]) -> None:
                with api_scope:
                    await api.run(task_status=task_status)

            await nursery.start(serve_api)
            if options.ui_port is not None:
                from .panel import run_panel

                await nursery.start(run_panel, api.bound_address, options.ui_port, options.token)
            log.info("regsyncd listening on %s, store %s", api.bound_address, options.db_path)
            notify("READY=1")
            interval = watchdog_interval()
            if interval:
                nursery.start_soon(_watchdog, interval)
            for resumed in await control.resume_interrupted():
                log.info("resuming interrupted execution %s as %s", resumed.parent_id, resumed.id)
            async for signum in signals:
                log.info("%s received: shutting down", signal.Signals(signum).name)
                break
            notify("STOPPING=1")
            api_scope.cancel()  # stop accepting calls; the server drains with a short grace
            await executor.shutdown(options.shutdown_grace)
            nursery.cancel_scope.cancel()


async def _watchdog(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await trio.sleep(interval)
