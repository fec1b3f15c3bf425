-- 0004_report_details.sql for PostgreSQL: the same tables and indexes (column types as db.for_postgresql
-- maps them), and the backfill of older records written with PostgreSQL's JSON functions.
ALTER TABLE calls ADD COLUMN detail BIGINT NOT NULL DEFAULT 0;
CREATE TABLE call_states (
    call_id     TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    script      TEXT NOT NULL,
    state       TEXT NOT NULL,
    exit_to     TEXT NOT NULL,
    revisit     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (call_id, seq)
);
CREATE TABLE call_inputs (
    call_id     TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    script      TEXT NOT NULL,
    state       TEXT NOT NULL,
    op          TEXT NOT NULL,
    name        TEXT,
    keys        TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL,
    secret      BIGINT NOT NULL DEFAULT 0,
    failure     BIGINT,
    PRIMARY KEY (call_id, seq)
);
CREATE TABLE call_transfers (
    call_id     TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    script      TEXT NOT NULL,
    state       TEXT,
    destination TEXT NOT NULL,
    dialstatus  TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX calls_report ON calls (script, ended_by, result, started_at, duration, detail);
CREATE INDEX calls_duration ON calls (duration, started_at, script);
DROP INDEX calls_started;
CREATE INDEX calls_started ON calls (started_at, duration, script);
CREATE INDEX call_states_report ON call_states (script, state, exit_to, started_at, revisit);
CREATE INDEX call_inputs_report ON call_inputs (script, state, op, name, outcome, keys, started_at, secret, failure);
CREATE INDEX call_transfers_report ON call_transfers (destination, dialstatus, started_at, script);
CREATE INDEX calls_caller ON calls (caller);
CREATE INDEX calls_called ON calls (called);
CREATE INDEX attempts_started ON attempts (started_at);
CREATE INDEX contacts_number ON contacts (number);

INSERT INTO call_states (call_id, seq, started_at, script, state, exit_to, revisit)
SELECT c.call_id, p.ord - 1, c.started_at, c.script, p.value,
       COALESCE(c.path::jsonb ->> (p.ord::int),
                CASE c.ended_by WHEN 'caller_hangup' THEN '(hangup)' WHEN 'error' THEN '(error)' ELSE '(end)' END),
       CASE WHEN EXISTS (SELECT 1 FROM jsonb_array_elements_text(c.path::jsonb) WITH ORDINALITY q(value, ord)
                         WHERE q.ord < p.ord AND q.value = p.value) THEN 1 ELSE 0 END
FROM calls c, jsonb_array_elements_text(c.path::jsonb) WITH ORDINALITY p(value, ord);

INSERT INTO call_inputs (call_id, seq, started_at, script, state, op, name, keys, outcome, secret, failure)
SELECT c.call_id, i.ord - 1, c.started_at, c.script, i.value ->> 'state', i.value ->> 'op',
       CASE i.value ->> 'op' WHEN 'menu' THEN '' ELSE NULL END,
       COALESCE(i.value ->> 'keys', ''), i.value ->> 'outcome',
       CASE WHEN i.value ->> 'keys' = '***' THEN 1 ELSE 0 END, NULL
FROM calls c, jsonb_array_elements(c.inputs::jsonb) WITH ORDINALITY i(value, ord);

INSERT INTO call_transfers (call_id, seq, started_at, script, state, destination, dialstatus)
SELECT c.call_id, t.ord - 1, c.started_at, c.script, NULL, COALESCE(t.value ->> 'destination', ''),
       COALESCE(t.value ->> 'dialstatus', '')
FROM calls c, jsonb_array_elements(c.transfers::jsonb) WITH ORDINALITY t(value, ord)
