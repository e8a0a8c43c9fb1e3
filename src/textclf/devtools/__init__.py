"""Developer tools run by pre-commit and CI."""
