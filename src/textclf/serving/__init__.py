"""BentoML serving: the service, its request/response types, settings and traffic log."""
