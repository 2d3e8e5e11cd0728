-- What the application may do in the audit store, and nothing more.
--
-- The worker, the API and the CLI connect as `dunning_app` (or a user who is a member
-- of it, DUNNING_DATABASE_URL); the schema's owner (DUNNING_DATABASE_OWNER_URL) runs
-- the migrations and manages API tokens. The application appends to the append-only
-- tables and reads what it reads: it cannot UPDATE, DELETE or TRUNCATE them, switch
-- their triggers off, or create anything. So the append-only rule binds the
-- application itself, not only honest code.
--
-- This is the privileges' current state, not history: `dunning.db.migrate` applies it
-- after every migration run (it is idempotent), so a table added by a migration gets
-- its line here, and tests/test_db_roles.py fails until it has one.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dunning_app') THEN
        CREATE ROLE dunning_app NOLOGIN;
    END IF;
    -- Nobody but the owner creates objects here, temporary tables included.
    EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO dunning_app', current_database());
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO dunning_app;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM dunning_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM dunning_app;

-- Append-only tables: appended to and read back.
GRANT SELECT, INSERT ON audit_events TO dunning_app;
GRANT SELECT, INSERT ON agreements TO dunning_app;
GRANT SELECT, INSERT ON outbox TO dunning_app;
GRANT SELECT, INSERT ON audit_checkpoints TO dunning_app;
GRANT INSERT ON audit_reveals TO dunning_app;
GRANT USAGE ON SEQUENCE outbox_id_seq, audit_reveals_id_seq TO dunning_app;

-- The API: looks tokens up (the owner creates and revokes them), keeps idempotency keys.
GRANT SELECT ON api_tokens TO dunning_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON api_idempotency TO dunning_app;

-- The collectors' queue: tasks are added, claimed, completed, expired or withdrawn
-- (their state changes; they are not history: the case's events are).
GRANT SELECT, INSERT, UPDATE ON call_tasks TO dunning_app;
GRANT USAGE ON SEQUENCE call_tasks_id_seq TO dunning_app;

-- `dunning audit verify`: when signed checkpoints began (0005_audit_checkpoints).
GRANT SELECT ON schema_migrations TO dunning_app;
