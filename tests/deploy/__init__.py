"""Tests of the Kubernetes deploy layer (deploy/)."""
