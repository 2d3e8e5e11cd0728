-- The supervisors' dashboard lists the promises due today (dunning/console/dashboard.py):
-- the promise_made rows whose `pay_by` is a given date. Without this index it would
-- read every row of the log to find them. The index holds promise_made rows only, by
-- their `pay_by` as stored (an ISO date, so text order is date order), with the case
-- id and seq beside it: no other part of the payload, so no personal data.
CREATE INDEX audit_events_promise_pay_by ON audit_events ((payload ->> 'pay_by'))
    INCLUDE (case_id, seq)
    WHERE event_type = 'promise_made';
