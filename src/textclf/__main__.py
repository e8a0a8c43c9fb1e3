"""``python -m textclf``."""

from textclf.cli import main

main()
