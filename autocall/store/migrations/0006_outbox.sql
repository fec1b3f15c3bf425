-- The outbox: every `notify` and product event, written before the call goes on, delivered in the background.
-- A row holds what is sent (service, path, the JSON body's exact bytes), never a header or a secret.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,                   -- notify | call_ended | attempt_ended | campaign_finished
    service          TEXT NOT NULL,
    base_url         TEXT NOT NULL DEFAULT '',        -- the script's URL for the service ('' : the configuration's)
    path             TEXT NOT NULL,                   -- already encoded, appended to the service's URL
    body             TEXT NOT NULL,                   -- JSON, sent as it is
    ordering_key     TEXT NOT NULL,                   -- rows of one key are delivered in id order (a call's id)
    idempotency_key  TEXT NOT NULL UNIQUE,            -- the Idempotency-Key header, the same on every try
    call_id          TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'pending', -- pending | delivered | failed
    created_at       REAL NOT NULL,
    expires_at       REAL NOT NULL,                   -- tried until then (24 hours, `outbox --retry` starts again)
    next_try_at      REAL NOT NULL,
    tries            INTEGER NOT NULL DEFAULT 0,
    last_status      INTEGER NOT NULL DEFAULT 0,      -- the HTTP status of the last try, 0 when none came back
    last_error       TEXT NOT NULL DEFAULT '',
    finished_at      REAL,                            -- delivered or failed at
    claimed_by       TEXT NOT NULL DEFAULT '',        -- the process sending it now (host:pid:n), '' when none
    claimed_until    REAL NOT NULL DEFAULT 0          -- that claim's lease: after it, another process may send
);
CREATE INDEX outbox_due ON outbox (status, next_try_at);
CREATE INDEX outbox_ordering ON outbox (ordering_key, status, id);
CREATE INDEX outbox_finished ON outbox (status, finished_at)
