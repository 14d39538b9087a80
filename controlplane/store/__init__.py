"""Persistence: tables, engine, migrations and the queries the services use."""
