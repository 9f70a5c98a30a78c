"""The one place a port is opened from a registry's settings.

Callers (the engine's runs, the service's connection test and tag preview) ask for a port and
get it open for the `async with` block: credentials resolved (config, docker/podman files), one
connection pool, QPS limit and token cache for everything done inside. Today every registry is
the HTTP backend; another backend (an OCI-layout directory) is chosen here, from its settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..oci.port import RegistryPort
from ..settings import GlobalSettings, RegistrySettings
from .client import RegistryClient


@asynccontextmanager
async def open_port(settings: RegistrySettings, global_: GlobalSettings) -> AsyncIterator[RegistryPort]:
    """The port of the registry `settings` describe, open until the block ends.

    Raises:
        ConfigError: its credentials cannot be resolved (named after the registry).
    """
    client = await RegistryClient.connect(settings, global_)
    async with client:
        yield client
