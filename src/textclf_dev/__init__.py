"""Developer tooling: benchmarks (``make bench``), toy fixtures for tests, and repository checks.

Not part of what runs in production: no image ships it (the serving and drift images hold only
their import closures, see ``bentofile.yaml`` and ``images/drift.yaml``), and no pipeline stage
imports it.
"""
