"""The task registry."""

from __future__ import annotations

import pytest

from speechllm.tasks import Task, get_task, register_task


def test_registry_rejects_duplicates_and_bad_tasks() -> None:
    assert get_task("sf").metric == "slu_f1" and get_task("kws").labels == ("yes", "no")
    with pytest.raises(ValueError, match="already registered"):
        register_task(Task("asr", "again", "transcript"))
    with pytest.raises(ValueError, match="unknown scoring"):
        Task("lid", "language id", "precision")
    with pytest.raises(ValueError, match="not reported by scoring 'label'"):
        Task("lid", "language id", "label", "wer")
    assert Task("lid", "language id", "label").metric == "accuracy"
    with pytest.raises(ValueError, match="unknown task 'lid'"):
        get_task("lid")
