"""Typed params: one frozen pydantic model per ``params.yaml`` section, one module per section.

A stage imports only the modules of the sections it reads (``textclf.config.train`` for
``train:``), so its import closure, which ``dvc.yaml`` lists as its deps, holds only those: a
new section for a later feature does not rerun (or retrain) a stage that does not read it.
``textclf.config.params`` holds the whole file's model, which the CLI validates before any
stage runs. This package's ``__init__`` imports nothing: every stage loads it.

Unknown keys and bad values fail with the key, the value and how to fix it::

    params.yaml: train.learning_rate = -1 is invalid: Input should be greater than 0.
      Fix: peak AdamW learning rate, e.g. 5e-5 (positive).
"""
