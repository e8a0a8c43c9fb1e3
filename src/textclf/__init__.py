"""Transformer text classifier, shipped the GitOps way."""
