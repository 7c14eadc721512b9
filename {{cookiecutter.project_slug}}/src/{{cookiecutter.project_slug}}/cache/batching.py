"""Reads that arrive together share one round trip to the cache server.

A shared-tier HIT is one read (edge.py), and with a cache client most of its cost is the
client's own work per command: packing it, a system call to send, waking up for the answer,
parsing it. A read made while no other is in flight goes out at once. Reads made while one is
in flight (a busy server's usual case) are collected during that turn of the event loop and
sent together on the next, as one pipeline; each request gets back exactly the values of its
own keys.

A failure of a batch reaches every request in it, and each request's own deadline (guard.py)
still applies: a request that gives up leaves the batch to finish for the others. With tracing
on, a batch's span is in the trace of the request whose read started the batch.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

Values = list[bytes | None]


class ReadBatcher:
    def __init__(
        self, read_batch: Callable[[list[Sequence[str]]], Awaitable[list[Values]]]
    ) -> None:
        self.read_batch = read_batch  # each list's values, in one round trip, in order
        self.in_flight = 0
        self.waiting: list[tuple[Sequence[str], asyncio.Future[Values]]] = []
        self.senders: set[asyncio.Task[None]] = set()  # held, or the loop may drop them

    async def get_many(self, keys: Sequence[str]) -> Values:
        if not self.in_flight and not self.waiting:
            self.in_flight += 1
            try:
                [values] = await self.read_batch([keys])
            finally:
                self.in_flight -= 1
            return values
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Values] = loop.create_future()
        # Marks an error as seen even if the caller gave up before it arrived.
        answer.add_done_callback(lambda future: future.cancelled() or future.exception())
        if not self.waiting:
            # Runs after every request the loop is serving in this turn has made its read.
            sender = loop.create_task(self.send())
            self.senders.add(sender)
            sender.add_done_callback(self.senders.discard)
        self.waiting.append((keys, answer))
        return await answer

    async def send(self) -> None:
        batch, self.waiting = self.waiting, []
        self.in_flight += 1
        try:
            results = await self.read_batch([keys for keys, _ in batch])
        except Exception as error:  # every request of the batch sees the failure
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        except asyncio.CancelledError:  # the loop is closing
            for _, answer in batch:
                answer.cancel()
            raise
        finally:
            self.in_flight -= 1
        for (_, answer), values in zip(batch, results, strict=True):
            if not answer.done():
                answer.set_result(values)
