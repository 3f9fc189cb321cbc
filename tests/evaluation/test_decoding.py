from functools import partial

import pytest
import torch

from speechllm.data.joint import parse_joint
from speechllm.evaluation.decoding import (
    DecodingConfig,
    LabelTrie,
    decode_batch,
    generate_constrained,
    generate_free,
    joint_target,
    score_labels,
    select,
    token_limits,
)
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.speech_llm import SpeechLLM
from speechllm.models.tiny import tiny_encoder, tiny_llm
from speechllm.testing import tiny_batches

LABELS = ["set_alarm", "set_alarm_time", "play music", "play", "weather query"]
UNBOUNDED = {"max_tokens_per_audio_second": None}


def build(llm_kind: str = "llama", encoder_kind: str = "wavlm", seed: int = 0) -> SpeechLLM:
    torch.manual_seed(seed)
    return SpeechLLM(
        tiny_encoder(encoder_kind), partial(ConvDownsampler), tiny_llm(llm_kind)
    ).eval()


def letters_only(model: SpeechLLM) -> list[int]:
    """``suppress_tokens`` that leave a random model only a-z: no eos, text round-trips."""
    keep = set(model.llm.tokenize("abcdefghijklmnopqrstuvwxyz"))
    return [i for i in range(len(model.llm.tokenizer)) if i not in keep]


def random_items(n: int, seed: int) -> dict:
    """``n`` items with varied audio and instructions, so random models answer differently."""
    batch = tiny_batches(1, n, seed=seed)[0]
    gen = torch.Generator().manual_seed(seed)
    batch["audio"] = batch["audio"] + 0.5 * torch.randn(batch["audio"].shape, generator=gen)
    batch["instructions"] = [f"intent {'xyzw'[i % 4] * (1 + i % 5)}?" for i in range(n)]
    return batch


def test_config_validates() -> None:
    for bad in ({"num_beams": 0}, {"max_new_tokens": 0}, {"max_tokens_per_audio_second": 0.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DecodingConfig(**bad)


@pytest.mark.parametrize("num_beams", [1, 2])
@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_batched_equals_unbatched(kind: str, num_beams: int) -> None:
    model = build(kind, seed=1)
    batch = random_items(4, seed=3)
    config = DecodingConfig(num_beams=num_beams, max_new_tokens=6, **UNBOUNDED)
    suppress = letters_only(model)
    batched = generate_free(model, batch, config, suppress_tokens=suppress)
    for b in range(4):
        alone = select(batch, [b])
        alone["audio"] = alone["audio"][:, : int(alone["audio_lengths"][0])]  # no padding
        assert generate_free(model, alone, config, suppress_tokens=suppress) == [batched[b]]
    assert all(len(text) == 6 for text in batched)


def test_audio_seconds_reads_samples_or_mel_frames() -> None:
    wave, mel = build(), build(encoder_kind="whisper")
    assert wave.encoder.seconds(torch.tensor([16000, 8000])).tolist() == [1.0, 0.5]
    assert mel.encoder.seconds(torch.tensor([100, 250])).tolist() == [1.0, 2.5]  # 10 ms hop


def test_length_bound_caps_a_model_that_never_stops() -> None:
    model = build()
    batch = tiny_batches(1, 4, seed=2)[0]
    config = DecodingConfig(max_new_tokens=100, max_tokens_per_audio_second=5.0)
    limits = token_limits(model, batch["audio_lengths"], config)
    seconds = batch["audio_lengths"] / 16000
    assert limits == [int(torch.ceil(5.0 * s)) + 10 for s in seconds]
    assert len(set(limits)) > 1  # items differ, so each is cut to its own budget
    texts = generate_free(model, batch, config, suppress_tokens=letters_only(model))
    assert [len(t) for t in texts] == limits
    capped = DecodingConfig(max_new_tokens=7, max_tokens_per_audio_second=5.0)
    texts = generate_free(model, batch, capped, suppress_tokens=letters_only(model))
    assert [len(t) for t in texts] == [7] * 4


def test_a_joint_answer_gets_the_answer_budget_after_its_transcript() -> None:
    model = build()
    batch = tiny_batches(1, 4, seed=2, tasks=("asr", "ic"))[0]
    assert set(batch["tasks"]) == {"asr", "ic"}
    config = DecodingConfig(max_new_tokens=7, max_tokens_per_audio_second=5.0)
    assert token_limits(model, batch["audio_lengths"], config, batch["tasks"]) == [7] * 4
    joint = DecodingConfig(max_new_tokens=7, max_tokens_per_audio_second=5.0, joint=True)
    texts = generate_free(model, batch, joint, suppress_tokens=letters_only(model))
    # ic: the transcript's 7, then the answer's 7; asr is never joint
    assert [len(t) for t in texts] == [14 if t == "ic" else 7 for t in batch["tasks"]]


def test_label_trie_separates_shared_prefixes() -> None:
    tokenize = build().llm.tokenize
    trie = LabelTrie(LABELS, tokenize, eos_token_id=2)
    alarm, underscore = tokenize("set_alarm"), tokenize("_")[0]
    assert trie.allowed(alarm) == sorted([underscore, 2])  # set_alarm may stop or go on
    assert trie.allowed(tokenize("set_al")) == tokenize("a")
    assert trie.allowed(tokenize("play music")) == [2]
    assert trie.allowed([*alarm, 2]) == [2]  # finished rows keep padding with eos
    assert trie.depth == len("set_alarm_time") + 1
    with pytest.raises(ValueError, match="tokenizes like another"):
        LabelTrie(["a", "a"], tokenize, 2)


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_constrained_decoding_never_leaves_the_label_set(kind: str) -> None:
    predictions = []
    for seed in range(3):
        model = build(kind, seed=seed)
        batch = random_items(12, seed=seed)
        trie = LabelTrie(LABELS, model.llm.tokenize, model.llm.eos_token_id)
        for num_beams in (1, 2):
            config = DecodingConfig(num_beams=num_beams, repetition_penalty=1.3)
            predictions += generate_constrained(model, batch, config, [trie] * 12)
    assert len(predictions) == 72 and set(predictions) <= set(LABELS)
    assert len(set(predictions)) >= 3  # random models still pick varied labels


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_label_scores_match_one_label_at_a_time(kind: str) -> None:
    model = build(kind, seed=4)
    batch = random_items(3, seed=5)
    scores = score_labels(model, batch, LABELS, max_rows=4)  # chunks split items
    assert scores.shape == (3, len(LABELS))
    torch.testing.assert_close(scores.exp().sum(-1), torch.ones(3, dtype=scores.dtype))
    with torch.no_grad():
        one_by_one = torch.tensor(
            [
                [
                    -model(**select(batch, [b]) | {"targets": [label]}).item_loss_sum.item()
                    for label in LABELS
                ]
                for b in range(3)
            ]
        )
    torch.testing.assert_close(scores, one_by_one.log_softmax(-1), atol=1e-4, rtol=1e-4)
    assert scores.argmax(-1).tolist() == one_by_one.argmax(-1).tolist()


@pytest.mark.parametrize(
    ("transcript", "task", "answer"),
    [("wake me at seven", "ic", "set_alarm_time"), ("", "er", "happy"), ("a: b", "sf", "x=y; z=w")],
)
def test_joint_target_round_trips(transcript: str, task: str, answer: str) -> None:
    assert parse_joint(joint_target(transcript, task, answer)) == (transcript, answer)


def test_joint_target_rejects_the_separator() -> None:
    with pytest.raises(ValueError, match="'|'"):
        joint_target("this | that", "ic", "x")


def test_decode_batch_routes_each_item() -> None:
    model = build(seed=6)
    batch = tiny_batches(1, 8, tasks=("asr", "ic"), seed=7)[0]
    labels = {"ic": ["even", "odd"]}
    config = DecodingConfig(max_new_tokens=5)
    records = decode_batch(model, batch, config, labels)
    assert [r["id"] for r in records] == batch["ids"]
    asr = [b for b, t in enumerate(batch["tasks"]) if t == "asr"]
    ic = [b for b, t in enumerate(batch["tasks"]) if t == "ic"]
    assert asr and ic
    free = generate_free(model, select(batch, asr), config)
    assert [records[b]["prediction"] for b in asr] == free
    assert all("label_scores" not in records[b] for b in asr)
    for b in ic:
        record = records[b]
        assert record["prediction"] in labels["ic"]
        assert record["target"] == batch["targets"][b]
        assert record["instruction"] == batch["instructions"][b]
        assert sum(record["label_scores"]) == pytest.approx(1.0)


def test_joint_decoding_answers_with_a_scored_label() -> None:
    model = build(seed=8)
    batch = tiny_batches(1, 4, tasks=("ic",), seed=9)[0]
    config = DecodingConfig(max_new_tokens=8, joint=True)
    records = decode_batch(model, batch, config, {"ic": ["even", "odd"]})
    for record in records:
        transcript, answer = parse_joint(record["prediction"])
        assert record["prediction"] == joint_target(transcript, "ic", answer)
        best = max(range(2), key=record["label_scores"].__getitem__)
        assert answer == ["even", "odd"][best]


@pytest.mark.parametrize("joint", [False, True])
def test_encoder_runs_once_per_evaluated_item(joint: bool) -> None:
    """Free generation, constrained decoding (or joint: generation then label scoring after the
    transcript) and label scoring all reuse one encoder pass per item."""
    model = build(seed=10)
    batch = tiny_batches(1, 6, tasks=("asr", "ic"), seed=11)[0]
    labels = {"ic": ["even", "odd", "zero"]}
    assert {"asr", "ic"} <= set(batch["tasks"])
    encoded_items = []
    hidden_states = model.encoder.hidden_states

    def counting(audio: torch.Tensor, audio_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        encoded_items.extend(audio_lengths.tolist())
        return hidden_states(audio, audio_lengths)

    model.encoder.hidden_states = counting
    config = DecodingConfig(max_new_tokens=4, joint=joint)
    records = decode_batch(model, batch, config, labels)
    assert sorted(encoded_items) == sorted(batch["audio_lengths"].tolist())  # each item once
    assert all(len(r["label_scores"]) == 3 for r in records if r["task"] == "ic")
    # reusing the embeddings scores exactly what encoding per call did
    ic = [b for b, t in enumerate(batch["tasks"]) if t == "ic"]
    alone = score_labels(model, select(batch, ic), labels["ic"], max_rows=2).exp()
    for k, b in enumerate(ic):
        if not joint:
            assert records[b]["label_scores"] == pytest.approx(alone[k].tolist(), abs=1e-5)
