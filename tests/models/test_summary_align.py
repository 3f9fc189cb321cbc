"""The summary aligner: utterance embeddings pointed at the LLM's embeddings of their task's
answer, a sampled softmax over the vocabulary with no pass through the LLM."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from speechllm.models import ConvDownsampler, SpeechLLM, SummaryAligner
from speechllm.models.ctc import CTCAligner
from speechllm.models.tiny import tiny_encoder, tiny_llm
from speechllm.testing import tiny_batches


def test_with_every_id_sampled_it_is_cross_entropy_over_the_whole_vocabulary() -> None:
    torch.manual_seed(0)
    vocab, summary = torch.randn(12, 8), torch.randn(2, 8)
    answers = [[3, 9], [1]]
    aligner = SummaryAligner(["gr"], temperature=0.5, negatives=500)  # every id drawn
    ours = aligner(summary, answers, vocab)
    cos = F.normalize(summary, dim=-1) @ F.normalize(vocab, dim=-1).T / 0.5
    log_probs = cos.log_softmax(-1)
    expected = torch.stack([-(log_probs[0, 3] + log_probs[0, 9]), -log_probs[1, 1]])
    torch.testing.assert_close(ours, expected)


def test_training_points_each_embedding_at_its_answer_words() -> None:
    torch.manual_seed(0)
    vocab = torch.randn(40, 16)
    summary = torch.randn(3, 16, requires_grad=True)
    answers = [[5], [7, 8], [5]]
    aligner = SummaryAligner(["gr"], negatives=10)
    optimizer = torch.optim.Adam([summary], lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        aligner(summary, answers, vocab).sum().backward()
        optimizer.step()
    nearest = (F.normalize(summary, dim=-1) @ F.normalize(vocab, dim=-1).T).topk(2).indices
    assert nearest[0, 0] == 5 and set(nearest[1].tolist()) == {7, 8} and nearest[2, 0] == 5
    assert not vocab.requires_grad


def test_tasks_and_settings_are_checked() -> None:
    for bad in ([], ["gr", "gr"]):
        with pytest.raises(ValueError, match="distinct tasks"):
            SummaryAligner(bad)
    with pytest.raises(ValueError, match="temperature"):
        SummaryAligner(["gr"], temperature=0.0)
    with pytest.raises(ValueError, match="at least one token"):
        SummaryAligner(["gr"])(torch.randn(1, 4), [[]], torch.randn(5, 4))
    assert SummaryAligner(["gr", "ac"]).slot("ac") == 1
    assert SummaryAligner(["gr"]).slot("asr") is None


def mixed_batch(seed: int = 0) -> dict:
    """Four recordings: two asked for a transcript, two for the speaker's gender."""
    batch = tiny_batches(1, 4, seed=seed)[0]
    batch["tasks"] = ["gr", "asr", "gr", "asr"]
    batch["targets"] = ["female", batch["targets"][1], "male", batch["targets"][3]]
    return batch


def build(summary_tokens: int = 2, **kwargs) -> SpeechLLM:
    torch.manual_seed(0)
    return SpeechLLM(
        tiny_encoder("wavlm"),
        partial(ConvDownsampler, summary_tokens=summary_tokens),
        tiny_llm("llama"),
        prompt_template="<audio>{audio}</audio> {instruction}: {summary}",
        **kwargs,
    )


def test_the_model_needs_one_utterance_embedding_per_aligned_task() -> None:
    with pytest.raises(ValueError, match="one per task"):
        build(summary_tokens=1, summary_align=SummaryAligner(["gr", "er"]))
    batch = tiny_batches(1, 2, tasks=("gr",))[0]
    with pytest.raises(ValueError, match="summary_align="):
        build()(**batch, objective={"lm": 0.0, "summary": 1.0})


def test_summary_objective_scores_each_task_on_its_own_embedding_without_the_llm() -> None:
    model = build(summary_align=SummaryAligner(["er", "gr"], negatives=0))
    model.set_trainable(["downsampler", "layer_weights"])
    calls = []
    model.llm.register_forward_hook(lambda *_: calls.append(1))
    batch = mixed_batch()
    out = model(**batch, objective={"lm": 0.0, "summary": 1.0})
    assert not calls
    frames = model._frame_embeddings(batch["audio"], batch["audio_lengths"], None)
    vocabulary = model.llm.base_model.get_input_embeddings().weight
    gr = [0, 2]
    n = frames.lengths[gr]
    summary = frames.embeds[gr, n - 1]  # "gr" is the second of the two utterance embeddings
    ids = [model.llm.tokenize(batch["targets"][i]) for i in gr]
    expected = model.summary_align(summary, ids, vocabulary)
    torch.testing.assert_close(out.item_loss_sum[gr], expected)
    others = [1, 3]
    assert out.item_loss_sum[others].abs().sum() == 0 and out.item_tokens[others].sum() == 0
    assert out.item_tokens[gr].tolist() == [len(x) for x in ids]
    torch.testing.assert_close(out.loss, expected.sum() / sum(len(x) for x in ids))
    out.loss.backward()
    assert model.downsampler.summary.weight.grad.abs().sum() > 0
    assert model.encoder.layer_weights.logits.grad.abs().sum() > 0


def test_ctc_and_summary_objectives_add_up_item_by_item() -> None:
    model = build(ctc=partial(CTCAligner, negatives=0), summary_align=SummaryAligner(["gr"]))
    model.set_trainable(["downsampler", "layer_weights", "ctc"])
    batch = mixed_batch(seed=1)
    torch.manual_seed(0)
    both = model(**batch, objective={"lm": 0.0, "ctc": 1.0, "summary": 2.0})
    torch.manual_seed(0)
    ctc = model(**batch, objective={"lm": 0.0, "ctc": 1.0})
    torch.manual_seed(0)
    summary = model(**batch, objective={"lm": 0.0, "summary": 1.0})
    torch.testing.assert_close(both.loss, ctc.loss + 2 * summary.loss)
    torch.testing.assert_close(both.item_loss_sum, ctc.item_loss_sum + summary.item_loss_sum)
    assert set(both.parts) == {"ctc", "summary"}
    with_lm = model(**batch, objective={"lm": 1.0, "summary": 0.5})
    assert set(with_lm.parts) == {"lm", "summary"}
