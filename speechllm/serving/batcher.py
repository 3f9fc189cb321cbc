"""Dynamic batching: concurrent requests share one encoder + ``generate`` call.

::

    request ─► queue ─► [ first item, then up to max_batch_size - 1 more within max_wait_ms ]
                              │ group by GenerationSettings (max_tokens, temperature, top_p, stop)
                              ▼
               one worker thread: collate ─► encode_audio ─► generate_ids ─► decode ─► cut at stop
                              │ streamed rows: BatchStreamer ─► TextSink ─► the request's queue
                              ▼
               each request's future gets its Answer (or its own error)

Requests that arrive while a batch decodes are already queued when it ends, so the next batch
takes them without waiting: under load batches fill up by themselves. Greedy rows are
left-padded with positions from the attention mask, so a request's answer in a batch equals its
answer alone. If a batch raises, its requests are rerun one by one, so only the request that
fails gets the error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from speechllm.data.features import collate_features
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving.jobs import Job
from speechllm.serving.settings import GenerationSettings
from speechllm.serving.streaming import BatchStreamer, TextSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: Literal["stop", "length"]
    completion_tokens: int


@dataclass
class _Pending:
    job: Job
    future: asyncio.Future[Answer]
    pieces: asyncio.Queue[str | None] | None = None
    sink: TextSink | None = field(default=None, repr=False)


class Batcher:
    """Runs :class:`Job` s in dynamic batches on one worker thread (torch gets the CPU cores).

    Args:
        model: The speech LLM, in eval mode.
        max_batch_size: Most requests per ``generate`` call (1: no batching).
        max_wait_ms: How long a batch's first request waits for company.
    """

    def __init__(self, model: SpeechLLM, max_batch_size: int = 8, max_wait_ms: float = 10.0):
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.batches = 0
        self.items = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="speechllm-generate")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def submit(self, job: Job) -> Answer:
        """The answer to ``job`` (raises the error its generation raised)."""
        return await self._enqueue(job).future

    async def stream(self, job: Job) -> AsyncIterator[str | Answer]:
        """Text pieces of the answer while it is decoded, then the :class:`Answer`."""
        pending = self._enqueue(job, streamed=True)
        try:
            while (piece := await pending.pieces.get()) is not None:
                yield piece
            yield await pending.future
        finally:
            pending.future.cancel()  # a client gone before its batch runs is left out of it

    def _enqueue(self, job: Job, streamed: bool = False) -> _Pending:
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not called")
        loop = asyncio.get_running_loop()
        pending = _Pending(job, loop.create_future())
        if streamed:
            queue: asyncio.Queue[str | None] = asyncio.Queue()
            pending.pieces = queue
            pending.sink = TextSink(
                lambda text: loop.call_soon_threadsafe(queue.put_nowait, text), job.settings
            )
        self._queue.put_nowait(pending)
        return pending

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch_size:
                remaining = deadline - loop.time()
                try:
                    if remaining <= 0:
                        batch.append(self._queue.get_nowait())
                    else:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
            live = [p for p in batch if not p.future.done()]  # clients that left are dropped
            for settings in dict.fromkeys(p.job.settings for p in live):
                group = [p for p in live if p.job.settings == settings]
                results = await loop.run_in_executor(self._executor, self._run, group)
                for pending, result in zip(group, results, strict=True):
                    _resolve(pending, result)

    def _run(self, group: list[_Pending]) -> list[Answer | Exception]:
        """One ``generate`` call for ``group``; if it raises, each request alone."""
        try:
            return self._generate(group)
        except Exception as error:
            if len(group) == 1:
                log.exception("generation failed")
                return [error]
            return [self._run([pending])[0] for pending in group]

    def _generate(self, group: list[_Pending]) -> list[Answer]:
        model, settings = self.model, group[0].job.settings
        device = next(model.parameters()).device
        audio, lengths = collate_features([(p.job.features, p.job.length) for p in group])
        kwargs = settings.generate_kwargs()
        if settings.stop:
            kwargs["tokenizer"] = model.llm.tokenizer
        if any(p.sink is not None for p in group):
            sinks = [p.sink for p in group]
            kwargs["streamer"] = BatchStreamer(model.llm.tokenizer, model.llm.eos_token_id, sinks)
        encoded = model.encode_audio(audio.to(device), lengths.to(device))
        ids = model.generate_ids(encoded, [p.job.instruction for p in group], **kwargs)
        self.batches += 1
        self.items += len(group)
        return [
            _answer(text, row, settings) for text, row in zip(model.decode(ids), ids, strict=True)
        ]


def _answer(text: str, ids: list[int], settings: GenerationSettings) -> Answer:
    text, stopped = settings.cut(text)
    finish = "length" if not stopped and len(ids) >= settings.max_tokens else "stop"
    return Answer(text, finish, len(ids))


def _resolve(pending: _Pending, result: Answer | Exception) -> None:
    """Hand ``result`` to the request: the rest of its text, the end of its stream, its answer."""
    if isinstance(result, Answer) and pending.sink is not None:
        pending.sink.offer(result.text, final=True)
    if pending.pieces is not None:  # after the pieces the sink scheduled (the loop is FIFO)
        asyncio.get_running_loop().call_soon(pending.pieces.put_nowait, None)
    if pending.future.done():
        return
    if isinstance(result, Exception):
        pending.future.set_exception(result)
    else:
        pending.future.set_result(result)
