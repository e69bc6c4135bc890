"""Errors of the data layer: a clear one for the user, an internal one for a single unreadable file."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset cannot be used as configured: a missing root or annotation file, an unknown option, or
    more broken files than ``max_bad_fraction`` allows. The message says what was expected where."""


class BadMediaError(Exception):
    """One video or frame folder cannot be read (empty, truncated, not a video, missing frames, timed out).

    Raised by readers and caught by :class:`ean.data.clip_dataset.ClipDataset`, which skips the file,
    warns, and counts it; it never reaches the training loop.
    """

    def __init__(self, path: str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")
