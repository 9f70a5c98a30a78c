"""The gRPC server's lifecycle: bind, serve the four services (plus health and reflection, so
grpcurl works), enforce the API token, and stop gracefully when its trio task is cancelled.

`ApiServer.run` is a trio task for `nursery.start`: it returns to the starter once the port is
bound (a port in use or unreadable TLS files raise from `start`), and on cancellation stops the
server with a short grace *while trio still runs*, so requests in flight can finish.
"""

from __future__ import annotations

import hmac
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc

from ..base.errors import ConfigError
from ..control.plane import ControlPlane
from . import notifications, trends
from .bridge import AsyncioThread, TrioPortal, open_asyncio_thread
from .servicers import ControlServicer, ExecutionServicer, RegistryServicer, TaskServicer

log = logging.getLogger(__name__)

#: seconds in-flight requests get to finish when the daemon stops
GRACE = 1.0
SERVICES = tuple(
    pb.DESCRIPTOR.services_by_name[name].full_name
    for name in ("RegistryService", "TaskService", "ExecutionService", "ControlService",
                 "NotificationService", "TrendService")
)
_HEALTH_METHODS = f"/{health.SERVICE_NAME}/"
_DENIED = "missing or invalid API token (send metadata 'authorization: Bearer <token>')"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Where and how the API listens. Without a token anyone who can connect is in control:
    keep the default loopback address, or set a token (and TLS) when listening wider."""

    listen: str = "127.0.0.1:50051"  # "host:port" (port 0: any free port) or "unix:/path"
    tls_cert: str | None = None  # PEM files; both or neither
    tls_key: str | None = None
    token: str | None = field(default=None, repr=False)


class ApiServer:
    """The gRPC API of a `ControlPlane`; `bound_address` is set once started."""

    def __init__(self, plane: ControlPlane, settings: ApiSettings = ApiSettings()) -> None:
        self.plane = plane
        self.settings = settings
        self.bound_address: str | None = None

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; `nursery.start` returns the bound address.

        Raises:
            ConfigError: (from start) the address cannot be bound or the TLS files are unusable.
        """
        credentials = await _credentials(self.settings)
        failure: ConfigError | None = None
        async with TrioPortal.open() as portal, open_asyncio_thread() as thread:
            try:
                running = await thread.run(self._start(portal, credentials))
            except ConfigError as exc:
                failure = exc  # raised below, bare: a nursery here would wrap it in a group
            else:
                await self._serve(
                    running, thread, secure=credentials is not None, task_status=task_status
                )
        if failure is not None:
            raise failure

    async def _serve(
        self,
        running: _Running,
        thread: AsyncioThread,
        *,
        secure: bool,
        task_status: trio.TaskStatus[str],
    ) -> None:
        try:
            self.bound_address = running.address
            auth = "API token required" if self.settings.token else "no API token"
            tls = "TLS" if secure else "plain text"
            log.info("gRPC API listening on %s (%s, %s)", running.address, tls, auth)
            task_status.started(running.address)
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await thread.run(running.stop())

    async def _start(self, portal: TrioPortal, credentials: Any) -> _Running:
        """On the asyncio thread: build, bind and start the grpc.aio server."""
        token = self.settings.token
        server = grpc.aio.server(
            interceptors=[_TokenCheck(token)] if token else [],
            # grpc sets SO_REUSEPORT by default: a second daemon would then share the port
            # silently instead of failing to start.
            options=[("grpc.so_reuseport", 0)],
        )
        rpc.add_RegistryServiceServicer_to_server(RegistryServicer(portal, self.plane), server)
        rpc.add_TaskServiceServicer_to_server(TaskServicer(portal, self.plane), server)
        rpc.add_ExecutionServiceServicer_to_server(ExecutionServicer(portal, self.plane), server)
        rpc.add_ControlServiceServicer_to_server(ControlServicer(portal, self.plane), server)
        notifications.add_to_server(server, portal, self.plane)
        trends.add_to_server(server, portal, self.plane)
        checker = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        names = (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
        try:
            address = _bind(server, self.settings.listen, credentials)
        except ConfigError:
            await server.stop(None)
            raise
        await server.start()
        for name in ("", *SERVICES):
            await checker.set(name, health_pb2.HealthCheckResponse.SERVING)
        return _Running(server, checker, address)


@dataclass(frozen=True, slots=True)
class _Running:
    server: Any  # grpc.aio.Server
    health: Any  # health.aio.HealthServicer
    address: str

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()  # health checks say NOT_SERVING from now
        await self.server.stop(GRACE)


def listen_host(listen: str) -> str | None:
    """The host of a `host:port` listen address (brackets stripped); None for `unix:PATH`.

    Raises:
        ConfigError: the address is neither.
    """
    if listen.startswith("unix:"):
        return None
    host, colon, port = listen.rpartition(":")
    if not (colon and host and port.isdigit()):
        raise ConfigError(f"listen address {listen!r}: expected host:port or unix:/path")
    return host.strip("[]")


def _bind(server: Any, listen: str, credentials: Any) -> str:
    """Bind `listen`; the address clients can use (the real port when 0 was asked for)."""
    listen_host(listen)
    try:
        if credentials is None:
            bound = server.add_insecure_port(listen)
        else:
            bound = server.add_secure_port(listen, credentials)
    except RuntimeError:
        bound = 0
    if not bound:
        raise ConfigError(f"cannot listen on {listen}: the address is in use or not available")
    return listen if listen.startswith("unix:") else f"{listen.rpartition(':')[0]}:{bound}"


async def _credentials(settings: ApiSettings) -> Any:
    """grpc server credentials from the TLS files, checked up front for a precise message."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("TLS needs both a certificate file and a key file")
    pem: list[bytes] = []
    for what, path in (("certificate", cert), ("key", key)):
        try:
            pem.append(await trio.Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read the TLS {what} file {path}: {exc.strerror}") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"TLS files {cert} and {key} are not a valid pair: {exc}") from None
    return grpc.ssl_server_credentials([(pem[1], pem[0])])


class _TokenCheck(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Every RPC but health checks needs `authorization: Bearer <token>` (constant-time check).

    The token is held as bytes in one attribute and never formatted into anything.
    """

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def __repr__(self) -> str:
        return "_TokenCheck(<token>)"

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(_HEALTH_METHODS):
            return handler
        if self._accepts(details.invocation_metadata or ()):
            return handler
        return _denied(handler)

    def _accepts(self, metadata: Any) -> bool:
        accepted = False
        for key, value in metadata:
            if key == "authorization" and isinstance(value, str):
                scheme, _, credential = value.partition(" ")
                matches = hmac.compare_digest(credential.strip().encode(), self._token)
                accepted |= scheme.lower() == "bearer" and matches
        return accepted


def _denied(handler: Any) -> Any:
    """A handler of the same shape as `handler` that fails with UNAUTHENTICATED."""

    async def deny(request: Any, context: Any) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)

    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(bool(handler.request_streaming), bool(handler.response_streaming))]
    return make(
        deny,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
