"""Image tests: podman builds, runs and pushes with the project's setup (`make test-image`)."""
