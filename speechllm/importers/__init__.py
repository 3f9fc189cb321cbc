"""Corpus importers, offline tools above ``data/``: each corpus's ``to_manifest(...)`` writes a
speechllm JSONL manifest; :mod:`speechllm.importers.shards` writes lhotse Shar shards."""
