-- `dunning report` starts from the cases opened in a period: their case_opened rows.
-- Without this index it reads every row of the period (or the whole table) to find
-- them. The index holds case_opened rows only (one per case, a few percent of all
-- rows), so appending any other event costs nothing more, and opening a case one more
-- small index insert. It holds the case id beside the time (so the report finds its
-- cases from the index alone), no payload, so no personal data.
CREATE INDEX audit_events_opened_at ON audit_events (occurred_at) INCLUDE (case_id)
    WHERE event_type = 'case_opened';
