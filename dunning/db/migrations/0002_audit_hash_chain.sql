-- The audit log becomes a hash chain: each row carries the SHA-256 of its own
-- content and of the previous row's hash (dunning/db/chain.py defines the bytes),
-- so changing, removing or reordering any row breaks every later link.
--
-- Rows written before this migration cannot be hashed here (the append-only trigger
-- forbids the UPDATE, and that is the point), so they keep NULL hashes: a case's
-- chain may start with a prefix of unchained legacy rows, which `dunning audit verify`
-- reports. The NOT VALID check makes every row inserted from now on carry a hash
-- without rewriting the old ones.
ALTER TABLE audit_events
    ADD COLUMN prev_hash text,
    ADD COLUMN hash text;

ALTER TABLE audit_events
    ADD CONSTRAINT audit_events_hashed
    CHECK (
        hash IS NOT NULL AND hash ~ '^[0-9a-f]{64}$'
        AND prev_hash IS NOT NULL AND prev_hash ~ '^[0-9a-f]{64}$'
    ) NOT VALID;

-- Who looked at a case's personal data, when, and why. Separate from audit_events
-- because sequence numbers there belong to the workflow's fold.
CREATE TABLE audit_reveals (
    id       bigserial   PRIMARY KEY,
    case_id  text        NOT NULL,
    auditor  text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    reason   text        NOT NULL
);

CREATE INDEX audit_reveals_case_id ON audit_reveals (case_id);

CREATE FUNCTION audit_reveals_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_reveals is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_reveals_append_only
    BEFORE UPDATE OR DELETE ON audit_reveals
    FOR EACH ROW EXECUTE FUNCTION audit_reveals_refuse_change();

CREATE TRIGGER audit_reveals_no_truncate
    BEFORE TRUNCATE ON audit_reveals
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reveals_refuse_change();
