"""Reads made together share one round trip, and each request gets exactly its own values."""

import asyncio
import random
from collections.abc import Sequence

import pytest

from {{ cookiecutter.project_slug }}.cache.batching import ReadBatcher, Values
from {{ cookiecutter.project_slug }}.cache.{{ cookiecutter.cache_backend }} import open_store
from {{ cookiecutter.project_slug }}.settings import Settings

pytestmark = pytest.mark.anyio


async def test_concurrent_reads_share_round_trips_and_each_gets_its_own_values(
    settings: Settings,
) -> None:
    prefix = f"{settings.cache_prefix}:batching"
    stored = {f"{prefix}:{number}": f"value {number}".encode() for number in range(0, 200, 2)}
    choice = random.Random(7)  # noqa: S311 (test data, not a secret)
    # Requests of one to four keys, odd numbers never stored.
    requests = [
        [f"{prefix}:{choice.randrange(200)}" for _ in range(choice.randint(1, 4))]
        for _ in range(100)
    ]
    batch_sizes: list[int] = []
    async with open_store(settings) as (store, _):
        for key, value in stored.items():
            await store.set(key, value, 60)
        read_batch = store.read_batch

        async def counted(key_lists: list[Sequence[str]]) -> list[Values]:
            batch_sizes.append(len(key_lists))
            return await read_batch(key_lists)

        store.reads = ReadBatcher(counted)
        answers = await asyncio.gather(*(store.get_many(keys) for keys in requests))

    assert answers == [[stored.get(key) for key in keys] for keys in requests]
    # The first read goes out alone; the others, made while it is in flight, go together.
    assert sum(batch_sizes) == len(requests)
    assert batch_sizes[0] == 1
    assert len(batch_sizes) <= 3


async def test_a_failed_batch_fails_every_read_in_it() -> None:
    async def unreachable(key_lists: list[Sequence[str]]) -> list[Values]:
        await asyncio.sleep(0)
        raise ConnectionError("the server went away")

    batcher = ReadBatcher(unreachable)
    answers = await asyncio.gather(
        *(batcher.get_many([f"key {number}"]) for number in range(5)), return_exceptions=True
    )

    assert [type(answer) for answer in answers] == [ConnectionError] * 5


async def test_a_reader_that_gives_up_leaves_the_batch_to_the_others() -> None:
    answering = asyncio.Event()

    async def slow(key_lists: list[Sequence[str]]) -> list[Values]:
        await answering.wait()
        return [[key.encode() for key in keys] for keys in key_lists]

    batcher = ReadBatcher(slow)
    alone = asyncio.create_task(batcher.get_many(["a"]))
    await asyncio.sleep(0)  # in flight: the next two reads wait for a batch
    impatient = asyncio.create_task(batcher.get_many(["b"]))
    patient = asyncio.create_task(batcher.get_many(["c", "d"]))
    await asyncio.sleep(0)
    impatient.cancel()  # its deadline passed (guard.py)
    answering.set()

    assert await alone == [b"a"]
    assert await patient == [b"c", b"d"]
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert batcher.in_flight == 0
    assert not batcher.waiting
