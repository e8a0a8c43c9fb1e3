"""``python -m textclf_dev.bench``: the same as ``textclf bench``."""

import sys

from textclf.cli import app

app(["bench", *sys.argv[1:]], prog_name="python -m textclf_dev.bench")
