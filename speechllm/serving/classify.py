"""A text classifier behind OpenAI's moderations API: the one classification route in OpenAI's
API, so the official client (``client.moderations.create(model=..., input=...)``) works.

``POST /v1/moderations`` takes ``input``, a text or a list of texts, and answers one result per
text: ``category_scores`` holds every ``task/label`` probability of the classifier's heads
(``department/cardiology``: 0.93), ``categories`` the same keys at ``score >= 0.5``, and
``flagged`` whether any is. A ``tasks`` field (an extension; default: every head) picks heads.
A request's texts are classified together (one LLM pass per task), one request at a time, off
the event loop; each text is bounded by
:data:`~speechllm.data.text_classification.MAX_TEXT_CHARS` and a request by the server's
``max_batch_size`` texts, before any work.
"""

from __future__ import annotations

import asyncio
import uuid

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from speechllm.data.text_classification import MAX_TEXT_CHARS
from speechllm.models.text_classifier import TextClassifier
from speechllm.serving.jobs import ServingError
from speechllm.serving.settings import ServeConfig
from speechllm.serving.shell import app_shell

THRESHOLD = 0.5
"""A ``task/label`` is in ``categories`` (and flags its text) at this probability."""


class ModerationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[str]
    tasks: list[str] | None = Field(default=None, max_length=64)


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[ModerationResult]


def create_classifier_app(
    model: TextClassifier, name: str, config: ServeConfig | None = None
) -> FastAPI:
    """The app serving the text classifier ``model`` (in eval mode) as model id ``name``."""
    config = config or ServeConfig()
    served = {"requests": 0, "texts": 0}
    app, check_model = app_shell(name, config, lambda: dict(served))
    one_at_a_time = asyncio.Lock()

    @app.post("/v1/moderations")
    async def moderations(body: ModerationRequest) -> ModerationResponse:
        check_model(body.model)
        texts = [body.input] if isinstance(body.input, str) else body.input
        _check(texts, body.tasks, model, config)
        async with one_at_a_time:
            scores = await run_in_threadpool(model.label_probabilities, texts, body.tasks)
        served["requests"] += 1
        served["texts"] += len(texts)
        return ModerationResponse(
            id=f"modr-{uuid.uuid4().hex}", model=name, results=[_result(s) for s in scores]
        )

    return app


def _check(
    texts: list[str], tasks: list[str] | None, model: TextClassifier, config: ServeConfig
) -> None:
    """Refuse what ``classify_text`` would, and more texts than a batch, before any work."""
    if not 1 <= len(texts) <= config.max_batch_size:
        message = f"input: 1 to {config.max_batch_size} texts, got {len(texts)}"
        raise ServingError(400, message, "input")
    for i, text in enumerate(texts):
        if not text.strip() or len(text) > MAX_TEXT_CHARS:
            message = f"input[{i}]: a text of 1 to {MAX_TEXT_CHARS} characters, got {len(text)}"
            raise ServingError(400, message, "input")
    try:
        model.check_tasks(tasks or ())
    except ValueError as error:
        raise ServingError(400, f"tasks: {error}", "tasks") from None


def _result(scores: dict[str, dict[str, float]]) -> ModerationResult:
    flat = {f"{task}/{label}": p for task, labels in scores.items() for label, p in labels.items()}
    categories = {key: p >= THRESHOLD for key, p in flat.items()}
    return ModerationResult(
        flagged=any(categories.values()),
        categories=categories,
        category_scores=flat,
        category_applied_input_types={key: ["text"] for key in flat},
    )
