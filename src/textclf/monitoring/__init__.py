"""Monitoring without torch: text slices, disparity and drift, shared by stages and drift-check."""
