"""Errors a user can act on. The CLI prints their message and exits 2, without a traceback."""

from __future__ import annotations


class TextclfError(Exception):
    """Base class: the message says what was wrong, where, and how to fix it."""


class ConfigError(TextclfError):
    """A value in params.yaml (or a config file) is missing, unknown or invalid."""


class DataError(TextclfError):
    """The input data is malformed: a missing column, a bad row, an unknown label, too few rows."""


class ArtifactError(TextclfError):
    """A file the stage needs is missing or was produced by an incompatible run."""


class ReleaseError(TextclfError):
    """The release inputs (dvc.lock, bentofile, deploy overlays) are missing, stale or disagree."""
