"""Fixtures of the stage tests: the shared tiny export (tests/exported.py)."""

from tests.exported import exported

__all__ = ["exported"]
