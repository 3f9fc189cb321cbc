"""Corpus importers: each ``to_manifest(...)`` writes a speechllm JSONL manifest."""
