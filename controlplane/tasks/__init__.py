"""What each runnable task type does in the worker, one module per family."""
