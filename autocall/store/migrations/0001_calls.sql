-- Call records (one row per call, written when the call ends) and the do-not-call list.
CREATE TABLE calls (
    call_id     TEXT PRIMARY KEY,
    script      TEXT NOT NULL,
    caller      TEXT NOT NULL DEFAULT '',
    called      TEXT NOT NULL DEFAULT '',
    channel     TEXT NOT NULL DEFAULT '',
    started_at  REAL NOT NULL,
    ended_at    REAL,
    duration    REAL NOT NULL DEFAULT 0,
    ended_by    TEXT,
    result      TEXT,
    error       TEXT,
    keys        TEXT NOT NULL DEFAULT '',
    path        TEXT NOT NULL DEFAULT '[]',
    prompts     TEXT NOT NULL DEFAULT '[]',
    inputs      TEXT NOT NULL DEFAULT '[]',
    transfers   TEXT NOT NULL DEFAULT '[]',
    recordings  TEXT NOT NULL DEFAULT '[]',
    variables   TEXT NOT NULL DEFAULT '{}',
    log         TEXT NOT NULL DEFAULT '[]',
    optout      INTEGER NOT NULL DEFAULT 0,
    attempt_id  INTEGER,
    origin      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX calls_started ON calls (started_at);
CREATE INDEX calls_attempt ON calls (attempt_id);

CREATE TABLE dnc (
    number    TEXT PRIMARY KEY,
    added_at  REAL NOT NULL,
    source    TEXT NOT NULL DEFAULT ''
);
