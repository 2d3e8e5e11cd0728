-- Agreements are keyed by the request that stored them, not by the case's sequence
-- number alone. Since decision rules 3 the document is stored *before* the agreeing
-- event is recorded (an agreement is recorded with its document or not at all); a
-- request that gave up after its row was written (the store answered too late) must
-- not block the next agreement at the same sequence number, nor lend it its document.
-- `request_key` is the idempotency key of the storing request (per operator action);
-- rows written before it keep NULL. The append-only triggers are unchanged.
ALTER TABLE agreements ADD COLUMN request_key text;
CREATE UNIQUE INDEX agreements_request_key ON agreements (request_key);
ALTER TABLE agreements DROP CONSTRAINT agreements_case_id_agreement_seq_key;
CREATE INDEX agreements_case_seq ON agreements (case_id, agreement_seq);
