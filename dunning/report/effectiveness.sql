-- The effectiveness report: every figure of docs/reports.md, computed here from
-- audit_events in one statement (one snapshot, runs on a read replica too).
--
-- $1 from, $2 to (timestamptz, [from, to)); $3 voice channels, $4 connected call
-- outcomes (text[], from schemas/compliance.py); $5 horizon in policy days; $6 days
-- in a roll-rate week.
--
-- Population: the cohort of cases opened in [from, to), followed until `to`: only
-- events that occurred before `to` count. Event types not named below (the engine
-- adds new ones) are ignored. Ages are in policy days (the pinned policy's
-- day_length), so an accelerated demo policy reads like a production one.
-- The result is one row of JSON columns; dunning/report/query.py reads it.
WITH cohort AS MATERIALIZED (
    SELECT o.case_id,
           o.occurred_at AS opened_at,
           a ->> 'strategy' AS strategy,
           a ->> 'experiment' AS experiment,
           coalesce(a ->> 'segment', 'all') AS segment,
           coalesce(a ->> 'arm', 'champion') AS arm,
           (o.payload -> 'policy' ->> 'name') || '@' || (o.payload -> 'policy' ->> 'version')
               AS policy,
           o.payload -> 'case' -> 'loan' ->> 'currency' AS currency,
           coalesce((o.payload -> 'case' -> 'loan' ->> 'principal')::numeric, 0)
               + coalesce((o.payload -> 'case' -> 'loan' ->> 'interest')::numeric, 0)
               + coalesce((o.payload -> 'case' -> 'loan' ->> 'fees')::numeric, 0)
               + coalesce((o.payload -> 'case' -> 'loan' ->> 'penalty')::numeric, 0) AS amount,
           extract(epoch FROM coalesce(o.payload -> 'policy' ->> 'day_length', 'P1D')::interval)
               AS day_s,
           o.payload -> 'policy' -> 'stages' AS stages
    FROM audit_events o
         CROSS JOIN LATERAL (
             SELECT CASE WHEN jsonb_typeof(o.payload -> 'assignment') = 'object'
                         THEN o.payload -> 'assignment' END AS a
         ) assigned
    WHERE o.event_type = 'case_opened' AND o.occurred_at >= $1 AND o.occurred_at < $2
),
-- One number per group (strategy, experiment, segment, arm, policy, currency).
grouped AS MATERIALIZED (
    SELECT c.*,
           dense_rank() OVER (ORDER BY strategy NULLS FIRST, experiment NULLS FIRST, segment,
                                       arm, policy, currency) AS g,
           extract(epoch FROM $2 - opened_at) / day_s AS obs_age
    FROM cohort c
),
-- The cohort's events that a figure reads, with what it reads extracted.
ev AS MATERIALIZED (
    SELECT c.case_id, c.g, e.seq, e.event_type,
           extract(epoch FROM e.occurred_at - c.opened_at) / c.day_s AS age,
           CASE WHEN e.event_type <> 'case_closed' THEN e.payload ->> 'stage' END AS stage,
           CASE WHEN e.event_type IN ('stage_entered', 'stage_changed', 'policy_migrated')
                THEN (e.payload ->> 'stage_index')::int END AS stage_index,
           CASE WHEN e.event_type = 'contact_attempted' THEN e.payload ->> 'channel' END
               AS channel,
           CASE WHEN e.event_type = 'contact_attempted' THEN e.payload ->> 'outcome' END
               AS outcome,
           CASE WHEN e.event_type = 'payment_received'
                THEN (e.payload ->> 'amount')::numeric
                     - coalesce((e.payload ->> 'overpaid')::numeric, 0) END AS recovered,
           CASE WHEN e.event_type = 'case_closed' THEN e.payload ->> 'reason' END AS reason,
           CASE WHEN e.event_type = 'promise_ended' THEN (e.payload ->> 'kept')::boolean END
               AS kept
    FROM grouped c
         JOIN audit_events e ON e.case_id = c.case_id
    WHERE e.occurred_at < $2
      AND e.event_type IN ('stage_entered', 'stage_changed', 'policy_migrated',
                           'contact_attempted', 'payment_received', 'case_closed',
                           'promise_made', 'promise_kept', 'promise_ended')
),
per_case AS MATERIALIZED (
    SELECT c.case_id, c.g, c.amount, c.obs_age,
           coalesce(x.recovered, 0) AS recovered,
           x.close_reason, x.closed_age,
           coalesce(x.contacts, 0) AS contacts,
           coalesce(x.calls, 0) AS calls,
           coalesce(x.rpc, 0) AS rpc,
           coalesce(x.max_stage, 0) AS max_stage
    FROM grouped c
         LEFT JOIN (
             SELECT case_id,
                    sum(recovered) AS recovered,
                    min(reason) FILTER (WHERE event_type = 'case_closed') AS close_reason,
                    min(age) FILTER (WHERE event_type = 'case_closed') AS closed_age,
                    count(*) FILTER (WHERE event_type = 'contact_attempted') AS contacts,
                    count(*) FILTER (WHERE channel = ANY ($3)) AS calls,
                    count(*) FILTER (WHERE channel = ANY ($3) AND outcome = ANY ($4)) AS rpc,
                    max(stage_index) AS max_stage
             FROM ev
             GROUP BY case_id
         ) x USING (case_id)
),
-- Each promise and how it ended: the next promise or closing event of its case.
promise_rows AS (
    SELECT case_id, g, seq, event_type,
           lead(event_type) OVER w AS next_type,
           lead(kept) OVER w AS next_kept,
           lead(reason) OVER w AS next_reason
    FROM ev
    WHERE event_type IN ('promise_made', 'promise_kept', 'promise_ended', 'case_closed')
    WINDOW w AS (PARTITION BY case_id ORDER BY seq)
),
promises AS (
    SELECT case_id, g, seq,
           CASE WHEN next_type = 'promise_kept' THEN 'kept'
                WHEN next_type = 'promise_ended' AND next_kept THEN 'kept'
                WHEN next_type = 'promise_ended' THEN 'broken'
                WHEN next_type = 'case_closed' AND next_reason = 'paid' THEN 'kept'
                WHEN next_type = 'case_closed' THEN 'closed'
                ELSE 'pending' END AS outcome
    FROM promise_rows
    WHERE event_type = 'promise_made'
),
-- Where each case was, as intervals of sequence numbers and of age: a stage from the
-- event that entered it to the next stage or closing event; the first one from the
-- opening; a closing for good.
stage_rows AS (
    SELECT case_id, g, seq, age, stage, stage_index, reason,
           event_type = 'case_closed' AS closing,
           row_number() OVER w AS n,
           lead(seq) OVER w AS next_seq,
           lead(age) OVER w AS next_age,
           lag(stage) OVER w AS previous_stage
    FROM ev
    WHERE event_type IN ('stage_entered', 'stage_changed', 'policy_migrated', 'case_closed')
    WINDOW w AS (PARTITION BY case_id ORDER BY seq)
),
intervals AS MATERIALIZED (
    SELECT case_id, g, closing, reason, stage_index,
           CASE WHEN closing THEN previous_stage ELSE stage END AS stage,
           CASE WHEN n = 1 THEN 0 ELSE seq END AS from_seq,
           next_seq AS to_seq,
           CASE WHEN n = 1 THEN 0 ELSE age END AS from_age,
           next_age AS to_age
    FROM stage_rows
),
-- Payments and promises, each with the stage the case was in.
staged AS (
    SELECT e.g, i.stage, e.event_type, e.recovered, p.outcome
    FROM ev e
         JOIN intervals i
           ON i.case_id = e.case_id AND NOT i.closing
          AND e.seq >= i.from_seq AND (i.to_seq IS NULL OR e.seq < i.to_seq)
         LEFT JOIN promises p ON p.case_id = e.case_id AND p.seq = e.seq
    WHERE e.event_type IN ('payment_received', 'promise_made')
),
group_figures AS (
    SELECT c.g,
           min(c.strategy) AS strategy, min(c.experiment) AS experiment,
           min(c.segment) AS segment, min(c.arm) AS arm, min(c.policy) AS policy,
           min(c.currency) AS currency,
           count(*) AS opened,
           sum(p.amount) AS amount_at_opening,
           sum(p.recovered) AS recovered,
           sum(p.recovered * p.recovered) AS recovered_sq,
           sum(p.amount * p.amount) AS amount_sq,
           sum(p.recovered * p.amount) AS recovered_x_amount,
           count(*) FILTER (WHERE p.close_reason = 'paid') AS cured,
           sum(p.contacts) AS contacts,
           sum(p.contacts * p.contacts) AS contacts_sq,
           sum(p.contacts * p.recovered) AS contacts_x_recovered,
           sum(p.calls) AS calls,
           sum(p.rpc) AS right_party_contacts,
           avg(p.closed_age) FILTER (WHERE p.close_reason = 'paid') AS days_to_cure_mean,
           sum(p.closed_age) FILTER (WHERE p.close_reason = 'paid') AS days_to_cure_sum,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY p.closed_age)
               FILTER (WHERE p.close_reason = 'paid') AS days_to_cure_median,
           sum(p.closed_age * p.closed_age) FILTER (WHERE p.close_reason = 'paid')
               AS days_to_cure_sq
    FROM grouped c
         JOIN per_case p USING (case_id)
    GROUP BY c.g
),
closed AS (
    SELECT g, jsonb_object_agg(close_reason, n) AS by_reason
    FROM (SELECT g, close_reason, count(*) AS n FROM per_case
          WHERE close_reason IS NOT NULL GROUP BY g, close_reason) x
    GROUP BY g
),
channels AS (
    SELECT g, jsonb_object_agg(channel, n) AS by_channel
    FROM (SELECT g, channel, count(*) AS n FROM ev
          WHERE event_type = 'contact_attempted' GROUP BY g, channel) x
    GROUP BY g
),
promise_figures AS (
    SELECT g, count(*) AS made,
           count(*) FILTER (WHERE outcome = 'kept') AS kept,
           count(*) FILTER (WHERE outcome = 'broken') AS broken
    FROM promises
    GROUP BY g
),
-- Stages in the order of the group's pinned policy (one policy per group).
policy_stages AS (
    SELECT DISTINCT ON (c.g, s.ordinality) c.g, (s.ordinality - 1)::int AS stage_index,
           s.value ->> 'name' AS stage
    FROM grouped c
         CROSS JOIN LATERAL jsonb_array_elements(c.stages) WITH ORDINALITY s
),
stage_figures AS (
    SELECT s.g, s.stage_index, s.stage,
           (SELECT count(*) FROM per_case p WHERE p.g = s.g AND p.max_stage >= s.stage_index)
               AS reached,
           (SELECT count(DISTINCT i.case_id) FROM intervals i
             WHERE i.g = s.g AND NOT i.closing AND i.stage = s.stage) AS entered,
           coalesce(ct.contacts, 0) AS contacts,
           coalesce(ct.calls, 0) AS calls,
           coalesce(ct.rpc, 0) AS right_party_contacts,
           coalesce(st.recovered, 0) AS recovered,
           coalesce(st.promises_made, 0) AS promises_made,
           coalesce(st.promises_kept, 0) AS promises_kept,
           coalesce(st.promises_broken, 0) AS promises_broken,
           (SELECT count(*) FROM intervals i
             WHERE i.g = s.g AND i.closing AND i.reason = 'paid' AND i.stage = s.stage) AS cured
    FROM policy_stages s
         LEFT JOIN (
             SELECT g, stage, count(*) AS contacts,
                    count(*) FILTER (WHERE channel = ANY ($3)) AS calls,
                    count(*) FILTER (WHERE channel = ANY ($3) AND outcome = ANY ($4)) AS rpc
             FROM ev WHERE event_type = 'contact_attempted' GROUP BY g, stage
         ) ct USING (g, stage)
         LEFT JOIN (
             SELECT g, stage,
                    sum(recovered) AS recovered,
                    count(*) FILTER (WHERE event_type = 'promise_made') AS promises_made,
                    count(*) FILTER (WHERE outcome = 'kept') AS promises_kept,
                    count(*) FILTER (WHERE outcome = 'broken') AS promises_broken
             FROM staged GROUP BY g, stage
         ) st USING (g, stage)
),
-- Roll rates: each case's state at the start of every policy week of its life (age
-- 0, 7, 14, ... days) against the start of the next, for the weeks that ended before
-- `to`, while the case was open at the week's start, within the horizon.
weeks AS (
    SELECT p.case_id, p.g, k * $6 AS t0, (k + 1) * $6 AS t1
    FROM per_case p
         CROSS JOIN LATERAL generate_series(
             0,
             least(floor(p.obs_age / $6), floor($5::numeric / $6),
                   coalesce(ceil(p.closed_age / $6), floor(p.obs_age / $6)))::int - 1
         ) AS k
),
roll AS (
    SELECT w.g, a.stage AS from_stage,
           CASE WHEN b.closing THEN b.reason ELSE b.stage END AS to_state,
           b.closing AS to_closed,
           count(*) AS n
    FROM weeks w
         JOIN intervals a
           ON a.case_id = w.case_id AND NOT a.closing
          AND a.from_age <= w.t0 AND (a.to_age IS NULL OR w.t0 < a.to_age)
         JOIN intervals b
           ON b.case_id = w.case_id
          AND b.from_age <= w.t1 AND (b.to_age IS NULL OR w.t1 < b.to_age)
    GROUP BY 1, 2, 3, 4
),
-- Recovery curves: at day d, what the cases observed for at least d days recovered
-- within d days of opening, over what they owed at opening (deltas, summed up).
curve_span AS (
    SELECT g, least($5, floor(max(obs_age)))::int AS last_day
    FROM per_case GROUP BY g
),
curve_deltas AS (
    SELECT g, floor(age)::int AS d, recovered AS num, 0::numeric AS den, 0 AS n
    FROM ev WHERE event_type = 'payment_received'
    UNION ALL
    SELECT g, 0, 0, amount, 1 FROM per_case
    UNION ALL
    SELECT g, floor(obs_age)::int + 1, -recovered, -amount, -1 FROM per_case
),
curve AS (
    SELECT s.g, s.d,
           sum(coalesce(x.num, 0)) OVER w AS recovered,
           sum(coalesce(x.den, 0)) OVER w AS owed,
           sum(coalesce(x.n, 0)) OVER w AS cases
    FROM (SELECT g, generate_series(0, last_day) AS d FROM curve_span) s
         LEFT JOIN (SELECT g, d, sum(num) AS num, sum(den) AS den, sum(n) AS n
                    FROM curve_deltas GROUP BY g, d) x USING (g, d)
    WINDOW w AS (PARTITION BY s.g ORDER BY s.d)
)
SELECT
    (SELECT coalesce(jsonb_agg(to_jsonb(f) || jsonb_build_object(
                'closed', coalesce(cl.by_reason, '{}'::jsonb),
                'contacts_by_channel', coalesce(ch.by_channel, '{}'::jsonb),
                'promises_made', coalesce(pf.made, 0),
                'promises_kept', coalesce(pf.kept, 0),
                'promises_broken', coalesce(pf.broken, 0)) ORDER BY f.g), '[]'::jsonb)
     FROM group_figures f
          LEFT JOIN closed cl USING (g)
          LEFT JOIN channels ch USING (g)
          LEFT JOIN promise_figures pf USING (g)) AS groups,
    (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.g, s.stage_index), '[]'::jsonb)
     FROM stage_figures s) AS stages,
    (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.g, r.from_stage, r.to_state), '[]'::jsonb)
     FROM roll r) AS roll,
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'g', c.g, 'day', c.d, 'recovered', c.recovered, 'owed', c.owed,
                'cases', c.cases) ORDER BY c.g, c.d), '[]'::jsonb)
     FROM curve c) AS curve
