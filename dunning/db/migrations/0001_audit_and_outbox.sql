-- The audit log: every domain event of every case, one row per event, kept forever.
CREATE TABLE audit_events (
    case_id      text        NOT NULL,
    seq          integer     NOT NULL CHECK (seq >= 1),
    event_type   text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    actor        text        NOT NULL,
    workflow_id  text        NOT NULL,
    run_id       text        NOT NULL,
    payload      jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, seq)
);

CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);

-- Append-only: rows are never changed or removed once written.
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- The sandbox providers' outbox: what would have been sent, once per idempotency key.
CREATE TABLE outbox (
    id               bigserial   PRIMARY KEY,
    idempotency_key  text        NOT NULL UNIQUE,
    case_id          text        NOT NULL,
    channel          text        NOT NULL,
    recipient        text        NOT NULL,
    template         text,
    body             text,
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_case_id ON outbox (case_id);
