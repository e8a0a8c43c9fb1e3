"""Behaviour tests of the exported model (CheckList-style): the suite, the runner."""
