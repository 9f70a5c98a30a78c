"""`/metrics` over HTTP for `regsyncd serve --metrics-listen`, and what keeps the values fresh.

prometheus-client's own WSGI server answers scrapes in its thread; `run` registers the metrics
with the hub and the registry transport, re-reads the store's view every `REFRESH` seconds, and
takes everything down again when cancelled.
"""

from __future__ import annotations

import logging

import trio
from prometheus_client.exposition import start_http_server

from ..base.errors import ConfigError
from ..registry import observe
from ..runtime.hub import Hub
from ..store.db import Database
from ..store.history import last_successes
from .metrics import Metrics, parse_metrics_listen

log = logging.getLogger("regsync.metrics")

REFRESH = 60.0  # seconds between reads of schedules and last successes from the store


async def serve_metrics(
    metrics: Metrics, listen: str, hub: Hub, db: Database,
    *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; `task_status` gets the bound address (`host:port`)."""
    host, port = parse_metrics_listen(listen)
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigError(f"--metrics-listen {listen}: {exc.strerror or exc}") from None
    hub.subscribe(metrics.observe)
    observe.add_observer(metrics)
    try:
        await _refresh(metrics, db)
        bound = f"{host}:{server.server_port}" if ":" not in host else f"[{host}]:{server.server_port}"
        log.info("metrics on http://%s/metrics", bound)
        task_status.started(bound)
        while True:
            await trio.sleep(REFRESH)
            await _refresh(metrics, db)
    finally:
        observe.remove_observer(metrics)
        hub.unsubscribe(metrics.observe)
        server.shutdown()  # returns within the server loop's 0.5 s poll
        server.server_close()
        thread.join(timeout=1)


async def _refresh(metrics: Metrics, db: Database) -> None:
    tasks, successes = await db.run(lambda repo: (repo.list_tasks(), last_successes()))
    metrics.refresh(tasks, successes)
