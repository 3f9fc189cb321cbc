"""The lock is the environment: it satisfies pyproject.toml, and it is exactly what is installed.

``make install`` installs ``requirements.lock`` (every package, exact version and hash), then the
project with ``--no-deps``; a new release on the registry can change neither.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distributions
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOT_LOCKED = {"speechllm", "pip"}  # the project itself, and the installer the venv came with


def locked() -> dict[str, list[tuple[str, Marker | None]]]:
    """``name -> [(version, marker)]``: a universal lock may pin per Python version."""
    pins: dict[str, list[tuple[str, Marker | None]]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if match:
            name, version, marker = match.groups()
            pins.setdefault(canonicalize_name(name), []).append(
                (version, Marker(marker) if marker else None)
            )
    return pins


def declared() -> list[Requirement]:
    """Runtime, every extra's and build requirements of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = [
        *project["project"]["dependencies"],
        *(r for extra in project["project"]["optional-dependencies"].values() for r in extra),
        *project["build-system"]["requires"],
    ]
    return [Requirement(r) for r in names]


def test_lock_parses_and_pins_the_stack() -> None:
    pins = locked()
    assert len(pins) > 50, "requirements.lock looks empty or unparsable"
    for name in ("torch", "torchaudio", "transformers", "setuptools"):
        assert name in pins, f"{name} is not in requirements.lock"


def test_lock_satisfies_pyproject() -> None:
    """Run ``make lock`` when this fails: pyproject.toml changed and the lock did not."""
    pins = locked()
    problems = []
    for req in declared():
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate():
            continue
        if name not in pins:
            problems.append(f"{req.name}: declared in pyproject.toml but not in the lock")
            continue
        for version, _ in pins[name]:
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{req.name}: lock pins {version}, pyproject.toml wants {req}")
    assert not problems, "\n".join(problems)


def test_torch_and_torchaudio_are_one_release() -> None:
    """torchaudio's binary links one torch release: a mismatched pair fails to import."""
    pins = {r.name: str(r.specifier) for r in declared()}
    assert pins["torch"].startswith("==") and pins["torchaudio"] == pins["torch"]


def test_installed_environment_is_the_lock() -> None:
    """What ``pip freeze`` would list equals the lock's pins for this Python and platform."""
    want = {
        name: version
        for name, variants in locked().items()
        for version, marker in variants
        if marker is None or marker.evaluate()
    }
    have = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    have = {name: v for name, v in have.items() if name not in NOT_LOCKED}
    problems = [
        f"{name}: installed {have.get(name, 'nothing')}, locked {version}"
        for name, version in sorted(want.items())
        if have.get(name) != version
    ] + [
        f"{name}: installed {v} but not in the lock" for name, v in have.items() if name not in want
    ]
    assert not problems, "run `make install`:\n" + "\n".join(problems)
