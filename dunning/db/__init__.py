"""The audit store in PostgreSQL: migrations and queries."""
