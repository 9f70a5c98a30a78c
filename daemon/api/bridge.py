"""The bridge between grpc.aio (asyncio, in its own thread) and the daemon (trio).

Two pieces:

- `AsyncioThread`: an asyncio loop running forever in a dedicated thread; trio code submits
  coroutines to it (start and stop the gRPC server) and awaits them without blocking trio.
- `TrioPortal`: created in trio, used from asyncio. `call` runs one trio function; `stream`
  follows a trio async iterator. Each piece of trio work is a task in the portal's nursery,
  started with `TrioToken.run_sync_soon` and answered with `loop.call_soon_threadsafe`.

Cancellation: when the asyncio side is cancelled (grpc cancels a handler whose client went away),
the trio task's cancel scope is cancelled. Trio tasks run in *shielded* scopes, so a daemon
shutting down does not kill in-flight requests: the server's grace period lets them finish, and
closing the portal afterwards cancels whatever is left (those callers get `PortalClosed`).

Streams cross in batches: a bounded trio channel fills while asyncio sends, and each hop takes
everything waiting (up to `batch_size`). One hop per event caps at a few thousand events/s.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, TypeVar, TypeVarTuple

import outcome
import trio

T = TypeVar("T")
Args = TypeVarTuple("Args")


class PortalClosed(RuntimeError):
    """The trio side is gone or going: the daemon is shutting down."""

    def __init__(self) -> None:
        super().__init__("the daemon is shutting down")


# asyncio in a thread ----------------------------------------------------------------------------


class AsyncioThread:
    """An asyncio event loop in its own thread; trio awaits coroutines run on it."""

    def __init__(self, name: str = "regsync-grpc") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self._drain()
            self.loop.close()

    def _drain(self) -> None:
        # Whatever is still pending (a handler grpc did not cancel) gets cancelled, not leaked.
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop; trio keeps running meanwhile. Not cancellable: start and stop
        are short, and abandoning them half-way would leak a server."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await trio.to_thread.run_sync(future.result)

    async def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        await trio.to_thread.run_sync(self._thread.join)


@asynccontextmanager
async def open_asyncio_thread() -> AsyncIterator[AsyncioThread]:
    thread = AsyncioThread()
    thread.start()
    try:
        yield thread
    finally:
        with trio.CancelScope(shield=True):
            await thread.stop()


# The portal -------------------------------------------------------------------------------------


class _Job:
    """One trio task run for the asyncio side. Touched only on the trio thread, except that
    `settle` may post to another thread."""

    def __init__(
        self,
        work: Callable[[], Awaitable[Any]],
        settle: Callable[[outcome.Outcome[Any]], None],
    ) -> None:
        self.work = work
        self.settle = settle
        self.scope: trio.CancelScope | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


def _ignore(result: outcome.Outcome[Any]) -> None:
    """Settle for jobs nobody awaits (stream producers report through their channel)."""


class TrioPortal:
    """Lets asyncio code run trio functions; open it in trio with `TrioPortal.open()`."""

    def __init__(self, nursery: trio.Nursery, token: trio.lowlevel.TrioToken) -> None:
        self._nursery = nursery
        self._token = token
        self._jobs: set[_Job] = set()
        self._closed = False

    @classmethod
    @asynccontextmanager
    async def open(cls) -> AsyncIterator[TrioPortal]:
        """A portal whose tasks live in a nursery here; leaving cancels whatever still runs."""
        async with trio.open_nursery() as nursery:
            portal = cls(nursery, trio.lowlevel.current_trio_token())
            try:
                yield portal
            finally:
                portal._close()

    # asyncio side

    async def call(self, fn: Callable[[*Args], Awaitable[T]], *args: *Args) -> T:
        """`await fn(*args)` in trio. Cancelling the caller cancels the trio task.

        Raises:
            whatever `fn` raises; PortalClosed when the daemon is shutting down.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[outcome.Outcome[T]] = loop.create_future()

        def settle(result: outcome.Outcome[Any]) -> None:
            try:
                loop.call_soon_threadsafe(_resolve, future, result)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        job = _Job(lambda: fn(*args), settle)
        self._submit(job)
        try:
            result = await future
        except asyncio.CancelledError:
            self._cancel(job)
            raise
        return result.unwrap()

    @asynccontextmanager
    async def stream(
        self,
        factory: Callable[[], AbstractAsyncContextManager[AsyncIterator[T]]],
        *,
        batch_size: int = 512,
        buffer: int = 4096,
    ) -> AsyncIterator[AsyncIterator[list[T]]]:
        """Follow the trio iterator `factory()` yields, in batches, until it ends.

        Leaving the block (normally, by error or by cancellation) cancels the trio side, so the
        iterator sees `trio.Cancelled` at its next checkpoint. Errors of the trio side are raised
        from the batch iterator once the events before them are delivered.
        """
        state: _Stream[T] = _Stream(factory, buffer)
        producer = _Job(state.produce, _ignore)
        self._submit(producer)
        try:
            yield self._batches(state, batch_size)
        finally:
            self._cancel(producer)

    async def _batches(self, state: _Stream[T], size: int) -> AsyncIterator[list[T]]:
        while batch := await self.call(state.next_batch, size):
            yield batch

    def _submit(self, job: _Job) -> None:
        try:
            self._token.run_sync_soon(self._start, job)
        except trio.RunFinishedError:
            raise PortalClosed() from None

    def _cancel(self, job: _Job) -> None:
        try:
            self._token.run_sync_soon(job.cancel)
        except trio.RunFinishedError:
            pass

    # trio side

    def _start(self, job: _Job) -> None:
        if self._closed:
            job.settle(outcome.Error(PortalClosed()))
        else:
            self._nursery.start_soon(self._run, job)

    async def _run(self, job: _Job) -> None:
        self._jobs.add(job)
        result: outcome.Outcome[Any] = outcome.Error(PortalClosed())
        try:
            with trio.CancelScope(shield=True) as job.scope:
                if job.cancelled:
                    job.scope.cancel()
                try:
                    result = outcome.Value(await job.work())
                except Exception as exc:  # noqa: BLE001 - delivered to the caller, who raises it
                    result = outcome.Error(exc)
        finally:
            self._jobs.discard(job)
            job.settle(result)

    def _close(self) -> None:
        self._closed = True
        for job in list(self._jobs):
            job.cancel()


def _resolve(future: asyncio.Future[outcome.Outcome[T]], result: outcome.Outcome[T]) -> None:
    if not future.done():  # a cancelled caller left
        future.set_result(result)


class _Stream(Generic[T]):
    """The trio half of a stream: a producer task filling a bounded channel, drained in batches.

    The bound is the backpressure: a slow client slows the producer, never grows memory.
    """

    def __init__(
        self, factory: Callable[[], AbstractAsyncContextManager[AsyncIterator[T]]], buffer: int
    ) -> None:
        self._factory = factory
        self._send, self._receive = trio.open_memory_channel[T](buffer)
        self._error: BaseException | None = None

    async def produce(self) -> None:
        finished = False
        async with self._send:
            try:
                async with self._factory() as items:
                    async for item in items:
                        await self._send.send(item)
                finished = True
            except Exception as exc:  # noqa: BLE001 - raised to the consumer after the events
                self._error = exc
            finally:
                if not finished and self._error is None:
                    self._error = PortalClosed()

    async def next_batch(self, size: int) -> list[T]:
        """At least one item, or [] when the stream ended; raises the producer's error."""
        try:
            batch = [await self._receive.receive()]
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            return []
        while len(batch) < size:
            try:
                batch.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch
