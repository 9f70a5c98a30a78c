"""A WAN on loopback: a TCP proxy that delivers every chunk a fixed delay after it arrived.

netem is not available on the test bed. Each direction of each connection queues what it reads
with a release time and writes it out when that time comes, so a request/answer round trip
costs 2 x `delay`, and a new connection one round trip more before its first byte (the TCP
handshake the loopback connection did not pay), while throughput is unlimited. The registry builds upload Locations from the Host
header, which names this proxy, so uploads come back through it too.

    with DelayProxy(registry.port, delay=0.025) as wan:    # 50 ms round trips
        ... point a client at wan.url ...
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self

_READ = 256 * 1024


class DelayProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:`upstream_port`, each chunk `delay` seconds late."""

    def __init__(self, upstream_port: int, *, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def __enter__(self) -> Self:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=10)
        return self

    def __exit__(
        self, exc: type[BaseException] | None, val: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            # a real TCP handshake costs the client a round trip before its first byte leaves
            handshake = asyncio.get_running_loop().time() + 2 * self.delay
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            await asyncio.gather(
                self._pump(reader, up_writer, handshake), self._pump(up_reader, writer),
                return_exceptions=True,
            )
        except (OSError, asyncio.CancelledError):  # refused upstream, or the proxy stopping
            writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, not_before: float = 0.0
    ) -> None:
        """Read as fast as bytes come; write each chunk out `delay` after it was read (and after
        `not_before`: the handshake the loopback connection skipped)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        delivering = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(_READ):
                queue.put_nowait((max(loop.time(), not_before) + self.delay, chunk))
            queue.put_nowait((loop.time() + self.delay, b""))
            await delivering
        except (OSError, asyncio.CancelledError):
            delivering.cancel()
        finally:
            writer.close()
