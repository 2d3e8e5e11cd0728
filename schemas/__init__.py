"""The language of the system: cases, policies, events, commands and query results.

Every model here is plain pydantic v2 with no Temporal or I/O import, so it can be
used from workflows (deterministic sandbox), activities, the CLI and tests alike.
"""
