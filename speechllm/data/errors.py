"""Data errors that name the manifest file and line, so a bad corpus is fixable in one pass."""

from __future__ import annotations


class DataError(ValueError):
    """A problem with one manifest line or its audio.

    ``reason`` is a short stable code (``missing_file``, ``nan_audio``...) used to count skipped
    items by cause; ``source`` and ``line`` locate the manifest line (1-based) when known.
    """

    def __init__(
        self, message: str, *, reason: str, source: str | None = None, line: int | None = None
    ) -> None:
        self.message = message
        self.reason = reason
        self.source = source
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}: " if self.source is not None else ""
        return f"{where}{self.message} [{self.reason}]"

    def at(self, source: str, line: int) -> DataError:
        """Return a copy of this error located at a manifest line."""
        return type(self)(self.message, reason=self.reason, source=source, line=line)

    def __reduce__(self) -> tuple:  # keep the keyword-only fields when crossing worker processes
        return _rebuild, (type(self), self.message, self.reason, self.source, self.line)


def _rebuild(
    cls: type[DataError], message: str, reason: str, source: str | None, line: int | None
) -> DataError:
    return cls(message, reason=reason, source=source, line=line)


class ManifestError(DataError):
    """A manifest line that cannot be used: malformed JSON, missing field, unknown task..."""


class AudioError(DataError):
    """Audio that cannot be used: missing, unreadable, truncated, empty or NaN."""


def unreadable(error: Exception, what: str) -> DataError:
    """``error`` as it stands if it is a :class:`DataError`, else an ``unreadable``
    :class:`AudioError` of ``what`` with the first line of the decoder's message (lhotse and
    soundfile raise many types; a count by reason needs one)."""
    if isinstance(error, DataError):
        return error
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return AudioError(f"undecodable audio of {what}: {first_line}", reason="unreadable")
