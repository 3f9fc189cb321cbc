"""The multi-label classification head: pooling, targets, training path and AUROC."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from speechllm.evaluation.metrics import auroc
from speechllm.models import ClassificationHead
from tests.models.stacked import make_model

LABELS = ["cardiac", "respiratory", "neuro"]


def test_mean_pooling_ignores_padding_and_targets_are_multi_hot() -> None:
    head = ClassificationHead(4, LABELS)
    hidden = torch.randn(2, 5, 4)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    padded = hidden.clone()
    padded[0, :2] = 1e3  # garbage under the padding
    torch.testing.assert_close(head(padded, mask), head(hidden, mask))
    torch.testing.assert_close(head(hidden, mask)[0], head.proj(hidden[0, 2:].mean(0)))
    targets = head.targets(["cardiac, neuro", "", "respiratory"])
    assert targets.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="'gastro' is not in"):
        head.targets(["gastro"])


def test_head_auroc_matches_scikit_learn_on_a_hand_made_case() -> None:
    head = ClassificationHead(2, LABELS, pooling="last")
    with torch.no_grad():
        head.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
        head.proj.bias.zero_()
    states = torch.tensor([[2.0, 0.1], [-1.0, 0.05], [0.3, -2.0], [1.5, 1.0], [-0.5, -0.2]])
    probs = head(states.unsqueeze(1), torch.ones(5, 1)).sigmoid().detach().numpy()
    truth = head.targets(["cardiac", "respiratory", "cardiac", "cardiac, respiratory", ""])
    truth = truth.numpy()  # neuro never occurs: single-class, skipped
    expected = roc_auc_score(truth[:, :2], probs[:, :2], average="macro")
    assert auroc(truth, probs) == pytest.approx(100 * expected)
    assert expected == pytest.approx(np.mean([1.0, 5 / 6]))  # respiratory: 0.05 < 0.1


def test_head_tasks_train_through_the_head_and_are_checkpointed(batch) -> None:
    model = make_model(heads=True)
    model.set_trainable(["heads"], active_adapters=["domain", "task"])
    out = model(**batch)
    on_head = [t == "ic" for t in batch["tasks"]]
    assert any(on_head) and not all(on_head)
    assert all(n == 1 for n, h in zip(out.item_tokens.tolist(), on_head, strict=True) if h)
    assert all(n > 1 for n, h in zip(out.item_tokens.tolist(), on_head, strict=True) if not h)
    out.loss.backward()
    assert model.heads["ic"].proj.weight.grad.abs().sum() > 0
    assert {k for k in model.trainable_state_dict() if k.startswith("heads.")} == {
        "heads.ic.proj.weight",
        "heads.ic.proj.bias",
    }
    audio = model.encode_audio(batch["audio"], batch["audio_lengths"])
    probs = model.classify(audio, batch["instructions"], "ic")
    assert probs.shape == (len(batch["ids"]), 2) and ((probs > 0) & (probs < 1)).all()
