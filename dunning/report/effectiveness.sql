-- The effectiveness report: every figure of docs/reports.md, computed here from
-- audit_events in one statement (one snapshot; runs on a read replica too).
--
-- $1 from, $2 to (timestamptz, [from, to)); $3 voice channels, $4 connected call
-- outcomes (text[], from schemas/compliance.py); $5 horizon in policy days; $6 days
-- in a roll-rate week.
--
-- Population: the cohort of cases opened in [from, to), followed until `to`: only
-- events that occurred before `to` count. Event types not named below (the engine
-- adds new ones) are ignored. Ages are in policy days since opening (the pinned
-- policy's day_length), so an accelerated demo policy reads like a production one.
-- The result is one row of JSON columns; dunning/report/query.py reads it.
WITH cohort AS MATERIALIZED (
    -- Found through the partial index audit_events_opened_at; jsonb_to_record reads
    -- each (large, compressed) payload once.
    SELECT o.case_id,
           o.occurred_at AS opened_at,
           a ->> 'strategy' AS strategy,
           a ->> 'experiment' AS experiment,
           coalesce(a ->> 'segment', 'all') AS segment,
           coalesce(a ->> 'arm', 'champion') AS arm,
           (p.policy ->> 'name') || '@' || (p.policy ->> 'version') AS policy,
           p.loan ->> 'currency' AS currency,
           coalesce((p.loan ->> 'principal')::numeric, 0)
               + coalesce((p.loan ->> 'interest')::numeric, 0)
               + coalesce((p.loan ->> 'fees')::numeric, 0)
               + coalesce((p.loan ->> 'penalty')::numeric, 0) AS amount,
           date_part('epoch', coalesce(p.policy ->> 'day_length', 'P1D')::interval) AS day_s
    FROM audit_events o
         CROSS JOIN LATERAL (
             SELECT r."case" -> 'loan' AS loan, r.policy,
                    CASE WHEN jsonb_typeof(r.assignment) = 'object' THEN r.assignment END AS a
             FROM jsonb_to_record(o.payload) AS r("case" jsonb, policy jsonb, assignment jsonb)
         ) p
    WHERE o.event_type = 'case_opened' AND o.occurred_at >= $1 AND o.occurred_at < $2
),
-- One number per group (strategy, experiment, segment, arm, policy, currency); how
-- long each case has been observed, and its last week boundary within the horizon.
grouped AS MATERIALIZED (
    SELECT c.*,
           dense_rank() OVER (ORDER BY strategy NULLS FIRST, experiment NULLS FIRST, segment,
                                       arm, policy, currency) AS g,
           x.obs_age,
           floor(least(x.obs_age, $5) / $6)::int AS last_week
    FROM cohort c
         CROSS JOIN LATERAL (SELECT date_part('epoch', $2 - c.opened_at) / c.day_s AS obs_age) x
),
-- The cohort's events that a figure reads, what it reads extracted: one scan of the
-- log (found without the cohort's CTE, so that it can run in parallel workers).
raw AS MATERIALIZED (
    SELECT e.case_id, e.seq, e.event_type, e.occurred_at,
           CASE WHEN e.event_type IN ('stage_entered', 'stage_changed', 'policy_migrated',
                                      'contact_attempted')
                THEN e.payload ->> 'stage' END AS stage,
           CASE WHEN e.event_type IN ('stage_entered', 'stage_changed', 'policy_migrated')
                THEN (e.payload ->> 'stage_index')::int END AS stage_index,
           CASE WHEN e.event_type = 'contact_attempted' THEN e.payload ->> 'channel' END
               AS channel,
           CASE WHEN e.event_type = 'contact_attempted'
                THEN e.payload ->> 'outcome' = ANY ($4) END AS connected,
           CASE WHEN e.event_type = 'payment_received'
                THEN (e.payload ->> 'amount')::numeric
                     - coalesce((e.payload ->> 'overpaid')::numeric, 0) END AS recovered,
           CASE WHEN e.event_type = 'case_closed' THEN e.payload ->> 'reason' END AS reason,
           CASE WHEN e.event_type = 'promise_ended'
                THEN (e.payload ->> 'kept')::boolean END AS kept
    FROM audit_events e
    WHERE e.case_id IN (SELECT o.case_id FROM audit_events o
                        WHERE o.event_type = 'case_opened'
                          AND o.occurred_at >= $1 AND o.occurred_at < $2)
      AND e.occurred_at < $2
      AND e.event_type IN ('stage_entered', 'stage_changed', 'policy_migrated',
                           'contact_attempted', 'payment_received', 'case_closed',
                           'promise_made', 'promise_kept', 'promise_ended')
),
-- Contacts (attempts handed to a provider): per case (how many), and per group,
-- stage and channel (how many, how many connected), in one pass.
contact_sets AS MATERIALIZED (
    SELECT r.case_id, c.g, r.stage, r.channel, count(*) AS n,
           count(*) FILTER (WHERE r.connected) AS connected
    FROM raw r
         JOIN grouped c USING (case_id)
    WHERE r.event_type = 'contact_attempted'
    GROUP BY GROUPING SETS ((r.case_id), (c.g, r.stage, r.channel))
),
case_contacts AS (
    SELECT case_id, n AS contacts FROM contact_sets WHERE case_id IS NOT NULL
),
contacts AS (
    SELECT g, stage, channel, n, connected FROM contact_sets WHERE case_id IS NULL
),
-- Every fact with the stage the case was in (its last stage event so far), the age
-- of the next stage or closing event, and for a promise how it ended: the first later
-- promise_kept, promise_ended or case_closed (seq * 4 + 1 kept, + 2 broken, + 3
-- closed otherwise).
walked AS MATERIALIZED (
    SELECT ev.*,
           substr(max(CASE WHEN ev.stage_index IS NOT NULL
                           THEN lpad(ev.seq::text, 10, '0') || ev.stage END) OVER up, 11)
               AS current_stage,
           count(*) FILTER (WHERE ev.stage_index IS NOT NULL OR ev.reason IS NOT NULL)
               OVER up AS moves,
           min(ev.age) FILTER (WHERE ev.stage_index IS NOT NULL OR ev.reason IS NOT NULL)
               OVER down AS next_move_age,
           min(ev.seq * 4 + CASE WHEN ev.event_type = 'promise_kept' THEN 1
                                 WHEN ev.event_type = 'promise_ended' AND ev.kept THEN 1
                                 WHEN ev.event_type = 'promise_ended' THEN 2
                                 WHEN ev.reason = 'paid' THEN 1
                                 ELSE 3 END)
               FILTER (WHERE ev.event_type IN ('promise_kept', 'promise_ended', 'case_closed'))
               OVER down AS resolution
    FROM (SELECT f.*, c.g, date_part('epoch', f.occurred_at - c.opened_at) / c.day_s AS age
          FROM raw f JOIN grouped c USING (case_id)
          WHERE f.event_type <> 'contact_attempted') ev
    -- up: this row and the ones before it; down: the rows after it (running aggregates
    -- both ways, each row computed from the previous one's).
    WINDOW up AS (PARTITION BY ev.case_id ORDER BY ev.seq),
           down AS (PARTITION BY ev.case_id ORDER BY ev.seq DESC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
promises AS (
    SELECT case_id, g, current_stage AS stage,
           CASE resolution % 4 WHEN 1 THEN 'kept' WHEN 2 THEN 'broken' WHEN 3 THEN 'closed'
                ELSE 'pending' END AS outcome
    FROM walked
    WHERE event_type = 'promise_made'
),
-- Where each case was: a stage from the event that entered it (the first one from
-- the opening) to the next stage or closing event; a closing for good.
intervals AS MATERIALIZED (
    SELECT w.case_id, w.g, w.reason IS NOT NULL AS closing, w.reason, w.current_stage AS stage,
           CASE WHEN w.moves = 1 THEN 0 ELSE w.age END AS from_age,
           w.next_move_age AS to_age,
           c.last_week
    FROM walked w
         JOIN grouped c USING (case_id)
    WHERE w.stage_index IS NOT NULL OR w.reason IS NOT NULL
),
per_case AS MATERIALIZED (
    SELECT c.case_id, c.g, c.amount, c.obs_age,
           coalesce(x.recovered, 0) AS recovered,
           x.close_reason, x.closed_age,
           coalesce(k.contacts, 0) AS contacts,
           coalesce(x.max_stage, 0) AS max_stage
    FROM grouped c
         LEFT JOIN (
             SELECT case_id,
                    sum(recovered) AS recovered,
                    min(reason) AS close_reason,
                    min(age) FILTER (WHERE reason IS NOT NULL) AS closed_age,
                    max(stage_index) AS max_stage
             FROM walked
             GROUP BY case_id
         ) x USING (case_id)
         LEFT JOIN case_contacts k USING (case_id)
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
    SELECT g, jsonb_object_agg(channel, n) AS by_channel,
           sum(calls) AS calls, sum(rpc) AS right_party_contacts
    FROM (SELECT g, channel, sum(n) AS n,
                 sum(n) FILTER (WHERE channel = ANY ($3)) AS calls,
                 sum(connected) FILTER (WHERE channel = ANY ($3)) AS rpc
          FROM contacts GROUP BY g, channel) x
    GROUP BY g
),
promise_figures AS (
    SELECT g, count(*) AS made,
           count(*) FILTER (WHERE outcome = 'kept') AS kept,
           count(*) FILTER (WHERE outcome = 'broken') AS broken
    FROM promises
    GROUP BY g
),
-- Stages in the order of the group's pinned policy (one policy per group), read from
-- one case of the group.
policy_stages AS (
    SELECT one.g, (s.ordinality - 1)::int AS stage_index, s.value ->> 'name' AS stage
    FROM (SELECT DISTINCT ON (g) g, case_id FROM grouped ORDER BY g, case_id) one
         JOIN audit_events o ON o.case_id = one.case_id AND o.event_type = 'case_opened'
         CROSS JOIN LATERAL jsonb_array_elements(o.payload -> 'policy' -> 'stages')
             WITH ORDINALITY s
),
reached AS (
    SELECT s.g, s.stage_index, sum(p.n) AS reached
    FROM policy_stages s
         JOIN (SELECT g, max_stage, count(*) AS n FROM per_case GROUP BY g, max_stage) p
           ON p.g = s.g AND p.max_stage >= s.stage_index
    GROUP BY s.g, s.stage_index
),
stage_figures AS (
    SELECT s.g, s.stage_index, s.stage,
           coalesce(r.reached, 0) AS reached,
           coalesce(i.entered, 0) AS entered,
           coalesce(i.cured, 0) AS cured,
           coalesce(ct.contacts, 0) AS contacts,
           coalesce(ct.calls, 0) AS calls,
           coalesce(ct.rpc, 0) AS right_party_contacts,
           coalesce(pay.recovered, 0) AS recovered,
           coalesce(pr.made, 0) AS promises_made,
           coalesce(pr.kept, 0) AS promises_kept,
           coalesce(pr.broken, 0) AS promises_broken
    FROM policy_stages s
         LEFT JOIN reached r USING (g, stage_index)
         LEFT JOIN (
             SELECT g, stage, count(*) FILTER (WHERE n_open > 0) AS entered,
                    sum(n_cured) AS cured
             FROM (SELECT g, stage, case_id, count(*) FILTER (WHERE NOT closing) AS n_open,
                          count(*) FILTER (WHERE closing AND reason = 'paid') AS n_cured
                   FROM intervals GROUP BY g, stage, case_id) per_stage
             GROUP BY g, stage
         ) i USING (g, stage)
         LEFT JOIN (
             SELECT g, stage, sum(n) AS contacts,
                    sum(n) FILTER (WHERE channel = ANY ($3)) AS calls,
                    sum(connected) FILTER (WHERE channel = ANY ($3)) AS rpc
             FROM contacts GROUP BY g, stage
         ) ct USING (g, stage)
         LEFT JOIN (
             SELECT g, current_stage AS stage, sum(recovered) AS recovered
             FROM walked WHERE event_type = 'payment_received' GROUP BY g, current_stage
         ) pay USING (g, stage)
         LEFT JOIN (
             SELECT g, stage, count(*) AS made,
                    count(*) FILTER (WHERE outcome = 'kept') AS kept,
                    count(*) FILTER (WHERE outcome = 'broken') AS broken
             FROM promises GROUP BY g, stage
         ) pr USING (g, stage)
),
-- Roll rates: each case's state at the start of every policy week of its life (ages
-- 0, 7, 14, ... days: boundary k at age k * $6) against the next boundary, for the
-- boundaries observed before `to` within the horizon, from an open state. A stage's
-- interval covers the boundaries inside it [first_k, last_k], a closing only the
-- first after it; from each covered boundary but the last a case stays, from the
-- last it moves to the state of the next interval that covers a boundary.
covering AS (
    SELECT i.*, coalesce(i.reason, i.stage) AS state,
           ceil(i.from_age / $6)::int AS first_k,
           CASE WHEN i.closing THEN least(ceil(i.from_age / $6)::int, i.last_week)
                ELSE least(ceil(i.to_age / $6)::int - 1, i.last_week) END AS last_k
    FROM intervals i
),
moves AS (
    SELECT c.*, lead(c.state) OVER w AS next_state, lead(c.closing) OVER w AS next_closing
    FROM covering c
    WHERE c.first_k <= c.last_k
    WINDOW w AS (PARTITION BY c.case_id ORDER BY c.from_age, c.closing)
),
roll AS (
    SELECT g, from_stage, to_state, to_closed, sum(n) AS n
    FROM (
        SELECT g, state AS from_stage, state AS to_state, false AS to_closed,
               last_k - first_k AS n
        FROM moves WHERE NOT closing AND last_k > first_k
        UNION ALL
        SELECT g, state, next_state, next_closing, 1
        FROM moves WHERE NOT closing AND last_k < last_week AND next_state IS NOT NULL
    ) x
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
    FROM walked WHERE event_type = 'payment_received'
    UNION ALL
    SELECT g, 0, 0, amount, 1 FROM per_case
    UNION ALL
    SELECT g, least(floor(obs_age), $5)::int + 1, -recovered, -amount, -1 FROM per_case
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
                'calls', coalesce(ch.calls, 0),
                'right_party_contacts', coalesce(ch.right_party_contacts, 0),
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
