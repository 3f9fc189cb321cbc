"""The known-harmless warnings are silenced by message and category, and nothing else is."""

from __future__ import annotations

import logging
import warnings

import pytest

from speechllm._warnings import KNOWN_WARNINGS, quiet_known_warnings

SAMPLES = [
    (FutureWarning, "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(...)`"),
    (UserWarning, "Found 100 module(s) in eval mode at the start of training. This may ..."),
    (UserWarning, "Support for mismatched key_padding_mask and attn_mask is deprecated. Use ..."),
    (FutureWarning, "`is_gradient_checkpointing` is deprecated and will be removed in v6."),
    (UserWarning, "Checkpoint directory /r/checkpoints exists and is not empty."),
    (UserWarning, "Total length of `list` across ranks is zero. Please make sure this was ..."),
]


def caught(category: type[Warning], message: str) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_known_warnings()
        warnings.warn(message, category, stacklevel=1)
    return seen


def test_every_known_warning_has_a_sample() -> None:
    assert len(SAMPLES) == len(KNOWN_WARNINGS)


@pytest.mark.parametrize(("category", "message"), SAMPLES)
def test_known_warnings_are_silenced(category: type[Warning], message: str) -> None:
    assert caught(category, message) == []


@pytest.mark.parametrize(
    ("category", "message"),
    [
        (DeprecationWarning, SAMPLES[0][1]),  # same words, another category
        (FutureWarning, "`something_else` is deprecated"),
        (UserWarning, "Found 3 NaN values in the batch"),
        (RuntimeWarning, SAMPLES[2][1]),
    ],
)
def test_other_warnings_still_show(category: type[Warning], message: str) -> None:
    assert len(caught(category, message)) == 1


def test_lightning_tip_dropped_other_info_kept(caplog: pytest.LogCaptureFixture) -> None:
    quiet_known_warnings()
    quiet_known_warnings()  # idempotent: one filter
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert len(log.filters) == 1
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("💡 Tip: For seamless cloud logging and experiment tracking, try litlogger")
        log.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]
