"""Use cases: the rules that decide what the store writes, in one transaction each."""
