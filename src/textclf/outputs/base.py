"""What the report models share: tolerant of added keys, and a reader that names the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from textclf import io
from textclf.errors import ArtifactError


class Report(BaseModel):
    """A report file (or part of one). Keys this model does not name are kept, not rejected: a
    base branch's file written by older or newer code still reads, and dumping keeps them."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    #: The DVC stage that writes the file (named in the fix of a read error).
    STAGE: ClassVar[str]

    @classmethod
    def parse(cls, raw: Any, source: str) -> Self:
        """Validate a loaded JSON value; an :class:`ArtifactError` names the source and the fix."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<top level>'}: {e['msg']}"
                for e in err.errors()[:5]
            )
            raise ArtifactError(
                f"{source} is not a valid {cls.__name__} report ({where}). Fix: rerun "
                f"`dvc repro {cls.STAGE}` with this checkout's code."
            ) from None

    @classmethod
    def read(cls, path: Path) -> Self:
        """The report at ``path``; missing or invalid: an :class:`ArtifactError` with the fix."""
        if not path.is_file():
            raise ArtifactError(f"{path} is missing. Fix: run `dvc repro {cls.STAGE}`.")
        try:
            raw = io.read_json(path)
        except json.JSONDecodeError as err:
            raise ArtifactError(
                f"{path} is not valid JSON ({err}). Fix: run `dvc repro {cls.STAGE}`."
            ) from None
        return cls.parse(raw, str(path))

    def write(self, path: Path) -> Path:
        """Write the report as key-sorted JSON, atomically."""
        return io.write_json(path, self.model_dump(mode="json", by_alias=True, exclude_unset=True))
