"""Where script tasks run: a local process (and, later, a Kubernetes pod)."""
