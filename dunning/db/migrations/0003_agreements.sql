-- Agreements (a promise to pay, a repayment plan, a settlement) as the document the
-- borrower was sent: rendered once from a reviewed template and stored with the
-- SHA-256 of its UTF-8 body. One document per agreeing event: (case_id,
-- agreement_seq) is the event's sequence number in the case, so a retried activity
-- finds the document it stored before instead of writing a second one.
CREATE TABLE agreements (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    case_id        text        NOT NULL,
    agreement_seq  integer     NOT NULL CHECK (agreement_seq >= 1),
    kind           text        NOT NULL CHECK (kind IN ('promise', 'plan', 'settlement')),
    language       text        NOT NULL,
    body           text        NOT NULL,
    sha256         text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, agreement_seq)
);

-- Append-only, like audit_events: a document once sent is never changed or removed.
CREATE FUNCTION agreements_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'agreements is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER agreements_append_only
    BEFORE UPDATE OR DELETE ON agreements
    FOR EACH ROW EXECUTE FUNCTION agreements_refuse_change();

CREATE TRIGGER agreements_no_truncate
    BEFORE TRUNCATE ON agreements
    FOR EACH STATEMENT EXECUTE FUNCTION agreements_refuse_change();
