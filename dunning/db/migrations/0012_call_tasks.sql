-- The collectors' work queue (docs/console.md, "The collectors' queue").
--
-- A policy's `agent_call` action becomes one row here per attempt (the activity
-- `queue_agent_call`, activities/providers/call_queue.py), keyed by the attempt's
-- idempotency key so a retried activity finds its task instead of making another.
-- Collectors of the row's team claim the next queued row (FOR UPDATE SKIP LOCKED, in
-- schemas.call_tasks.PRIORITY order) and complete it with an outcome, which the
-- waiting activity returns to the case as the attempt's outcome. No personal data: the
-- phone number stays in the case; the console shows it to the claiming collector only,
-- each time recorded in audit_reveals.
CREATE TABLE call_tasks (
    id               bigserial   PRIMARY KEY,
    case_id          text        NOT NULL,
    workflow_id      text        NOT NULL,
    idempotency_key  text        NOT NULL UNIQUE,
    team             text        NOT NULL CHECK (team ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    stage            text        NOT NULL,
    stage_rank       integer     NOT NULL,
    balance          numeric     NOT NULL,
    currency         text        NOT NULL,
    promise_due      date,
    phone_index      integer     NOT NULL DEFAULT 0,
    due_at           timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    state            text        NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'claimed', 'completed', 'expired', 'withdrawn')),
    claimed_by       text,
    claimed_at       timestamptz,
    outcome          text CHECK (outcome IN ('answered', 'no_answer', 'wrong_number', 'promise')),
    promise_amount   numeric,
    promise_pay_by   date,
    ended_reason     text,
    ended_at         timestamptz,
    CHECK ((state = 'completed') = (outcome IS NOT NULL)),
    CHECK (state = 'queued' OR state IN ('expired', 'withdrawn') OR claimed_by IS NOT NULL)
);

-- The claim's scan: a team's queued rows in priority order.
CREATE INDEX call_tasks_queued ON call_tasks
    (team, stage_rank DESC, promise_due ASC NULLS LAST, balance DESC, due_at, id)
    WHERE state = 'queued';
CREATE INDEX call_tasks_case ON call_tasks (case_id);

-- A collector's token names their team (`dunning token create --role collector --team T`).
ALTER TABLE api_tokens ADD COLUMN team text CHECK (team ~ '^[a-z0-9][a-z0-9_-]{0,39}$');
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('service', 'operator', 'supervisor', 'auditor', 'collector'));
