"""Typed models of the report files the stages write, one module per stage.

The stage validates what it writes through its model (a malformed report never lands), and
every reader (``textclf summary``, the model card, the PR review and its gate) reads the file
through the same model. One module per stage so that a stage's import closure, its deps in
``dvc.yaml``, holds only its own model. This ``__init__`` imports nothing.
"""
