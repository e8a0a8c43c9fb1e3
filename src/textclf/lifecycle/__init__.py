"""After the release: what Argo CD reports about a production rollout, told to the repository."""
