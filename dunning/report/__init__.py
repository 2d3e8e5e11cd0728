"""`dunning report`: the effectiveness figures managers use, computed from the audit
log in PostgreSQL (`effectiveness.sql`), defined in docs/reports.md."""
