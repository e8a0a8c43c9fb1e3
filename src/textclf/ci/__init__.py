"""Helpers the workflows run before anything is installed: standard library only.

Run from a checkout of the base branch with ``PYTHONPATH=src python3 -m textclf.ci.<name>``.
"""
