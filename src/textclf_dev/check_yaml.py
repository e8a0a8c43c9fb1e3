"""Check that YAML files parse (all documents); used by the pre-commit hook."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def check(paths: list[str]) -> list[str]:
    """Return one error line per file that does not parse."""
    errors = []
    for name in paths:
        try:
            list(yaml.safe_load_all(Path(name).read_text(encoding="utf-8")))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            errors.append(f"{name}: {err}")
    return errors


def main(argv: list[str] | None = None) -> int:
    """Exit 1 and print the errors if any file is not valid YAML."""
    errors = check(sys.argv[1:] if argv is None else argv)
    for line in errors:
        print(line, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
