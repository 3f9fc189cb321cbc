"""The components a model config read from a file may build: such a config is data, not code.

An export's ``config.json`` or a checkpoint's recipe comes from files anyone can hand you.
Given to Hydra's ``instantiate`` as is, any importable callable in a ``_target_`` runs (Hydra's
blocklist stops ``os.system``, not ``builtins.open(path, "w")``, which truncates the file
before loading even fails). So a config from a file is checked whole, before anything is
imported or built:

- every ``_target_`` is one of :data:`COMPONENTS` (or one the caller's own code allowed with
  :func:`allow`), never an import path the file chose;
- every key is a parameter of its component (:mod:`speechllm._targets`, the rule the
  user's own config is checked by), and no flag rides along in ``**kwargs``; the Hugging Face
  loaders take a few plain model kwargs (:data:`HF_MODEL_KWARGS`) besides;
- ``trust_remote_code`` and the like are refused wherever they appear: such flags are the
  caller's to give, never the file's;
- no ``_args_`` (positional arguments escape the key check) and no ``${...}`` interpolation
  (a resolver reads environment variables, e.g. a token, into a value the file controls).

The training entry points build from the user's own Hydra config and need none of this; it
guards only configs read back from disk (:mod:`speechllm.models.pretrained`).
"""

from __future__ import annotations

from typing import Any

from speechllm import _targets

HF_MODEL_KWARGS = frozenset({"dtype", "torch_dtype", "attn_implementation"})
"""Plain ``from_pretrained`` kwargs a Hugging Face base may take from a config."""

COMPONENTS: dict[str, frozenset[str] | None] = {
    "speechllm.models.SpeechLLM": frozenset(),
    "speechllm.models.TextClassifier": frozenset(),
    "speechllm.models.AudioEncoder.from_pretrained": HF_MODEL_KWARGS,
    "speechllm.models.LLM.from_pretrained": HF_MODEL_KWARGS,
    "speechllm.models.ConvDownsampler": frozenset(),
    "speechllm.models.ClassificationHead": frozenset(),
    "speechllm.models.CTCAligner": frozenset(),
    "speechllm.models.SummaryAligner": frozenset(),
    "peft.LoraConfig": frozenset(),
    # tiny random bases: their extra keys are architecture sizes for a transformers config
    "speechllm.models.tiny.tiny_encoder": None,
    "speechllm.models.tiny.tiny_whisper_encoder": None,
    "speechllm.models.tiny.tiny_llm": None,
}
"""Allowed ``_target_`` -> the keys it takes beyond its named parameters (``None``: any key,
for builders whose ``**overrides`` only size a transformers config)."""

REFUSED_KEYS = {
    "trust_remote_code": "it would run Python code shipped with a model repo",
    "code_revision": "it picks the remote code to run",
    "use_safetensors": "weights load from safetensors or not at all",
    "_args_": "positional arguments bypass the key check",
}


class UnsafeConfigError(ValueError):
    """A config from a file names something it may not build; nothing was built."""


def allow(target: str, extra_keys: frozenset[str] | None = frozenset()) -> None:
    """Let configs from files build ``target``: call it from your code for a component of
    your own (the allow-list is extended by code you run, never by the file)."""
    COMPONENTS[target] = extra_keys


def check(node: Any, source: str, where: str = "model") -> None:
    """Raise :class:`UnsafeConfigError` unless every part of ``node`` is allowed.

    Args:
        node: the plain (JSON) config, checked before anything is imported from it.
        source: the file it came from, named in the error.
        where: the key path of ``node`` inside that file, e.g. ``model.llm``.
    """
    for path, value in _targets.nodes(node, where):
        if isinstance(value, str) and "${" in value:
            _refuse(source, path, f"{value!r} is an interpolation; a saved config holds values")
        if not isinstance(value, dict):
            continue
        if "_target_" in value:
            _check_target(value, source, path)
        for key in value:
            if key in REFUSED_KEYS:
                _refuse(source, f"{path}.{key}", f"refused: {REFUSED_KEYS[key]}")


def _check_target(node: dict[str, Any], source: str, where: str) -> None:
    target = node["_target_"]
    if target not in COMPONENTS:
        _refuse(
            source,
            f"{where}._target_",
            f"{target!r} is not a speechllm component; a saved config may only name "
            f"{sorted(COMPONENTS)}. If you wrote that component and trust this file, call "
            f"speechllm.models.components.allow({target!r}) in your code before loading",
        )
    extra = COMPONENTS[target]
    if extra is None:
        return
    found = _targets.unknown_keys(node, _targets.locate(target), extra, kwargs_take_any=False)
    unknown = sorted(set(found) - REFUSED_KEYS.keys())  # those get their own reason
    if unknown:
        _refuse(source, f"{where}.{unknown[0]}", f"{target} takes no key {unknown[0]!r}")


def _refuse(source: str, where: str, why: str) -> None:
    raise UnsafeConfigError(f"{source}: {where}: {why}; nothing was loaded")
