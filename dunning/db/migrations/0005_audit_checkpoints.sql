-- Signed head checkpoints: an anchor of each case's audit log outside its rows.
--
-- After every append the worker records the head it left, (case, seq, hash), signed
-- with an Ed25519 key the database does not hold (DUNNING_AUDIT_SIGNING_KEY;
-- dunning/db/checkpoints.py defines the signed bytes). `dunning audit verify`
-- checks them with the public key: rows removed from the end of a case, or a tail
-- rewritten with fresh hashes, no longer match a checkpoint that cannot be forged.
-- Written in the same transaction as the rows, so the log's true head always has one.
CREATE TABLE audit_checkpoints (
    case_id    text        NOT NULL,
    seq        integer     NOT NULL CHECK (seq >= 1),
    hash       text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    key_id     text        NOT NULL,
    signature  text        NOT NULL,
    signed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, seq)
);

CREATE FUNCTION audit_checkpoints_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_refuse_change();

CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_refuse_change();
