"""Dynamic batching: concurrent requests share one encoder + ``generate`` call.

::

    request ─► queue ─► [ first item, then up to max_batch_size - 1 more within max_wait_ms ]
                              │ group by GenerationSettings (max_tokens, temperature, top_p, stop)
                              ▼
               one worker thread: collate ─► encode_audio ─► generate_ids ─► decode ─► cut at stop
                              │ each step: RowStops retires rows whose client left or that
                              │            reached a stop string; BatchStreamer ─► TextSink
                              ▼
               each request's future gets its Answer (or its own error)

Requests that arrive while a batch decodes are already queued when it ends, so the next batch
takes them without waiting: under load batches fill up by themselves. Greedy rows are
left-padded with positions from the attention mask, so a request's answer in a batch equals its
answer alone. If a batch raises, its requests are rerun one by one, so only the request that
fails gets the error. A client that leaves frees its slot: queued, it is left out of its batch;
running, its row stops at the next token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers import StoppingCriteriaList

from speechllm.data.features import collate_features
from speechllm.models.speech_llm import SpeechLLM
from speechllm.serving.jobs import Job, ServingError
from speechllm.serving.settings import GenerationSettings
from speechllm.serving.stopping import RowStops
from speechllm.serving.streaming import BatchStreamer, TextSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: Literal["stop", "length"]
    completion_tokens: int
    prompt_tokens: int
    """Positions the LLM read: the prompt's text tokens plus the audio embeddings."""


@dataclass
class _Pending:
    job: Job
    future: asyncio.Future[Answer]
    pieces: asyncio.Queue[str | None] | None = None
    sink: TextSink | None = field(default=None, repr=False)
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set when the client leaves; the generation thread reads it at every step."""


def _shutting_down() -> ServingError:
    return ServingError(
        503, "the server is shutting down", None, "server_shutting_down", "server_error"
    )


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
        self.cancelled = 0
        """Requests whose client left before their answer (dropped or stopped early)."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="speechllm-generate")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._taken: list[_Pending] = []
        self._running: asyncio.Future[list[Answer | Exception]] | None = None
        self._closed = False
        self._abandon = threading.Event()

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self, grace_s: float = 10.0) -> None:
        """Refuse new work, give the batch in flight ``grace_s`` to finish, then abandon it
        (each row stops at its next token); whatever is left gets a 503."""
        self._closed = True
        running = self._running
        if running is not None:
            await asyncio.wait({running}, timeout=grace_s)
            if not running.done():
                self._abandon.set()
                await asyncio.wait({running}, timeout=grace_s)
            await asyncio.sleep(0)  # the loop hands out the batch's answers first
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
        left = list(self._taken)
        while self._queue is not None and not self._queue.empty():
            left.append(self._queue.get_nowait())
        for pending in left:
            _resolve(pending, _shutting_down())

    async def submit(self, job: Job) -> Answer:
        """The answer to ``job`` (raises the error its generation raised); cancelling the
        caller (its client left) takes the job out of its batch."""
        pending = self._enqueue(job)
        try:
            return await pending.future
        finally:
            self._leave(pending)

    async def stream(self, job: Job) -> AsyncIterator[str | Answer]:
        """Text pieces of the answer while it is decoded, then the :class:`Answer`."""
        pending = self._enqueue(job, streamed=True)
        try:
            while (piece := await pending.pieces.get()) is not None:
                yield piece
            yield await pending.future
        finally:
            self._leave(pending)  # a client gone before its batch runs is left out of it

    def _leave(self, pending: _Pending) -> None:
        if not pending.future.done() or pending.future.cancelled():
            pending.cancelled.set()
            pending.future.cancel()
            self.cancelled += 1

    def _enqueue(self, job: Job, streamed: bool = False) -> _Pending:
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not called")
        if self._closed:
            raise _shutting_down()
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

    async def _gather(self) -> list[_Pending]:
        """The next batch: the first request, then whoever arrives within ``max_wait``."""
        loop = asyncio.get_running_loop()
        batch = self._taken = [await self._queue.get()]
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
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            for settings in dict.fromkeys(p.job.settings for p in batch):
                # clients that left (also while an earlier group decoded) are dropped
                group = [p for p in batch if p.job.settings == settings and not p.future.done()]
                if not group:
                    continue
                if self._closed:
                    for pending in group:
                        _resolve(pending, _shutting_down())
                    continue
                self._running = loop.run_in_executor(self._executor, self._run, group)
                try:
                    results = await self._running
                finally:
                    self._running = None
                for pending, result in zip(group, results, strict=True):
                    _resolve(pending, result)
            self._taken = []

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
        tokenizer = model.llm.tokenizer
        stops = RowStops(
            [p.cancelled for p in group],
            self._abandon,
            tokenizer,
            settings.stop,
            start=int(model.llm.is_encoder_decoder),
        )
        kwargs["stopping_criteria"] = StoppingCriteriaList([stops])
        if any(p.sink is not None for p in group):
            sinks = [p.sink for p in group]
            kwargs["streamer"] = BatchStreamer(tokenizer, model.llm.eos_token_id, sinks)
        with torch.no_grad():  # serving never trains: no autograd state kept
            encoded = model.encode_audio(audio.to(device), lengths.to(device))
        ids = model.generate_ids(encoded, [p.job.instruction for p in group], **kwargs)
        self.batches += 1
        self.items += len(group)
        prompts = [
            p.job.text_tokens + n for p, n in zip(group, encoded.lengths.tolist(), strict=True)
        ]
        return [
            _answer(text, row, settings, prompt)
            for text, row, prompt in zip(model.decode(ids), ids, prompts, strict=True)
        ]


def _answer(text: str, ids: list[int], settings: GenerationSettings, prompt_tokens: int) -> Answer:
    text, stopped = settings.cut(text)
    finish = "length" if not stopped and len(ids) >= settings.max_tokens else "stop"
    return Answer(text, finish, len(ids), prompt_tokens)


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
