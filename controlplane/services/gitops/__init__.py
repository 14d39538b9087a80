"""GitOps: read a Git source, plan against the active set, approve, apply atomically."""
