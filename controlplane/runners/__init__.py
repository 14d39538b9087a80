"""Where script tasks run: a local process, or a Kubernetes pod."""
