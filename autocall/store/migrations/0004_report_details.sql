-- What reports read: a row per state visit, per input and per transfer of each call, written with the call
-- (calls.detail = 1). started_at and script are the call's, copied so that a report filters these rows
-- without a join. Records written before this migration (detail = 0) are filled in from their JSON
-- columns as far as those tell: gather names, menu failures and the state of a transfer were not kept.
ALTER TABLE calls ADD COLUMN detail INTEGER NOT NULL DEFAULT 0;

CREATE TABLE call_states (
    call_id     TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,                -- 0, 1, 2... in the order the call entered them
    started_at  REAL NOT NULL,
    script      TEXT NOT NULL,
    state       TEXT NOT NULL,
    exit_to     TEXT NOT NULL,                   -- the next state, or (hangup), (error), (end)
    revisit     INTEGER NOT NULL DEFAULT 0,      -- 1 when the call had been in this state before
    PRIMARY KEY (call_id, seq)
);

CREATE TABLE call_inputs (
    call_id     TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    script      TEXT NOT NULL,
    state       TEXT NOT NULL,
    op          TEXT NOT NULL,                   -- menu | gather
    name        TEXT,                            -- the gathered variable, '' for a menu, NULL: not recorded
    keys        TEXT NOT NULL DEFAULT '',        -- '***' for a secret gather
    outcome     TEXT NOT NULL,
    secret      INTEGER NOT NULL DEFAULT 0,
    failure     INTEGER,                         -- 1: the menu's last try (to its failure target), NULL: not recorded
    PRIMARY KEY (call_id, seq)
);

CREATE TABLE call_transfers (
    call_id     TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    script      TEXT NOT NULL,
    state       TEXT,                            -- NULL: not recorded
    destination TEXT NOT NULL,
    dialstatus  TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);

-- Covering indexes whose leading columns are what reports group by: a report reads them in order, with no
-- sort and without touching the (wide) rows.
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

-- only sqlite
INSERT INTO call_states (call_id, seq, started_at, script, state, exit_to, revisit)
SELECT c.call_id, p.key, c.started_at, c.script, p.value,
       COALESCE(json_extract(c.path, '$[' || (p.key + 1) || ']'),
                CASE c.ended_by WHEN 'caller_hangup' THEN '(hangup)' WHEN 'error' THEN '(error)' ELSE '(end)' END),
       CASE WHEN EXISTS (SELECT 1 FROM json_each(c.path) q WHERE q.key < p.key AND q.value = p.value)
            THEN 1 ELSE 0 END
FROM calls c, json_each(c.path) p;

INSERT INTO call_inputs (call_id, seq, started_at, script, state, op, name, keys, outcome, secret, failure)
SELECT c.call_id, i.key, c.started_at, c.script, json_extract(i.value, '$.state'), json_extract(i.value, '$.op'),
       CASE json_extract(i.value, '$.op') WHEN 'menu' THEN '' ELSE NULL END,
       COALESCE(json_extract(i.value, '$.keys'), ''), json_extract(i.value, '$.outcome'),
       CASE WHEN json_extract(i.value, '$.keys') = '***' THEN 1 ELSE 0 END, NULL
FROM calls c, json_each(c.inputs) i;

INSERT INTO call_transfers (call_id, seq, started_at, script, state, destination, dialstatus)
SELECT c.call_id, t.key, c.started_at, c.script, NULL, COALESCE(json_extract(t.value, '$.destination'), ''),
       COALESCE(json_extract(t.value, '$.dialstatus'), '')
FROM calls c, json_each(c.transfers) t;
-- end only
-- only postgresql
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
FROM calls c, jsonb_array_elements(c.transfers::jsonb) WITH ORDINALITY t(value, ord);
-- end only
