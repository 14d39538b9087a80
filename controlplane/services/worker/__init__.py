"""Workers: claim executions under a lease and run them on their pinned revision."""
