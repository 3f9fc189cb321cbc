"""Data side of speechllm: manifests, audio, features, instructions, samplers.

Names are imported on first use, so ``speechllm-data`` starts without loading Lightning or
transformers.
"""

from __future__ import annotations

from speechllm._lazy import lazy_names

_PUBLIC = {
    "speechllm.data.audio": ("AudioInfo", "SpecAugment", "audio_info", "decode_audio", "load_audio",
                             "prepare_waveform"),
    "speechllm.data.datamodule": ("BadItemReport", "SpeechDataModule"),
    "speechllm.data.dataset": ("SpeechDataset", "collate"),
    "speechllm.data.errors": ("AudioError", "DataError", "ManifestError"),
    "speechllm.data.features": ("Featurizer", "collate_features"),
    "speechllm.data.hf_stream": ("HFShard", "HFSource", "hf_shards"),
    "speechllm.data.instructions": ("instruction_for", "sample_instruction"),
    "speechllm.data.joint": (
        "joint_target",
        "parse_joint",
        "transcripts",
        "with_joint_targets",
        "with_transcripts",
    ),
    "speechllm.data.manifest": ("ManifestEntry", "read_manifest", "read_manifests",
                                "write_manifest"),
    "speechllm.data.sampler": ("Batching", "EvalBatchSampler", "ItemKey", "MultitaskBatchSampler",
                               "Schedule", "TaskMixture", "padding_efficiency"),
    "speechllm.data.shards": ("Shard", "read_shards"),
    "speechllm.data.streaming": ("ShardStream", "StreamShard"),
    "speechllm.data.sharded_datamodule": ("ShardedDataModule",),
    "speechllm.data.text": ("TextClassificationData", "TextDataModule"),
    "speechllm.data.text_classification": ("TextExample", "read_text_examples",
                                           "write_text_examples"),
    "speechllm.data.text_items": ("read_text_items", "text_seconds"),
}  # fmt: skip
__all__, __getattr__ = lazy_names(__name__, _PUBLIC)
