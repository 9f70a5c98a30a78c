"""The gRPC control plane: grpcio on its own asyncio thread, the daemon's work in trio.

grpcio has no trio support, so the API is two worlds joined by one narrow bridge:

- `bridge` runs an asyncio loop in a thread and offers asyncio code a `TrioPortal`: run a trio
  function and await its result, or follow a trio stream in batches. Cancellation crosses both
  ways (a client that goes away cancels its trio task).
- `inbound` turns protobuf messages into the daemon's values, `outbound` values into replies
  (both pure); task, registry and webhook specs go through `config.validate_document`, the
  dict-level validation the YAML loader runs, so the API and the file share every rule.
- `status` maps the daemon's errors to gRPC status codes (pure).
- `servicers` are thin: convert the request, call the `ControlPlane` through the portal,
  convert the reply.
- `server` owns the lifecycle: `ApiServer.run` (a trio task started with `nursery.start`) binds
  the address, enforces the API token, and stops gracefully when cancelled.
"""

from __future__ import annotations

from .server import ApiServer, ApiSettings

__all__ = ["ApiServer", "ApiSettings"]
