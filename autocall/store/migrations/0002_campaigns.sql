-- Outbound campaigns: one row per campaign, per contact, per dial attempt, and per rejected CSV row.
-- Times are epoch seconds (REAL). States and outcomes are the words docs/campaigns.md lists.
CREATE TABLE campaigns (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    script         TEXT NOT NULL,                    -- the script's file stem: AGI runs NAME.dlg
    script_path    TEXT NOT NULL,
    dialogue       TEXT NOT NULL,                    -- the dialogue's own name
    contacts_path  TEXT NOT NULL,
    contacts_sha256 TEXT NOT NULL,
    header         TEXT NOT NULL DEFAULT '[]',       -- the CSV header, JSON list, for the export
    options        TEXT NOT NULL DEFAULT '{}',       -- the run options, JSON, secrets never included
    state          TEXT NOT NULL DEFAULT 'running',  -- running | paused | done
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL,
    finished_at    REAL,
    rows_read      INTEGER NOT NULL DEFAULT 0,
    blank_lines    INTEGER NOT NULL DEFAULT 0,
    owner          TEXT NOT NULL DEFAULT '',         -- host:pid of the dialer running it, '' when none
    owner_seen     REAL NOT NULL DEFAULT 0           -- that dialer's last heartbeat
);

CREATE TABLE contacts (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    line         INTEGER NOT NULL,                   -- line of the CSV where the row starts
    number       TEXT NOT NULL,                      -- normalised (autocall.numbers)
    params       TEXT NOT NULL DEFAULT '{}',         -- the script's params, JSON
    extra        TEXT NOT NULL DEFAULT '{}',         -- other columns, JSON, kept for the export
    sim_outcome  TEXT NOT NULL DEFAULT '',
    sim_keys     TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'pending',    -- pending | dialling | done
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_try_at  REAL NOT NULL DEFAULT 0,
    outcome      TEXT,                               -- the last attempt's outcome, final once status is done
    detail       TEXT NOT NULL DEFAULT '',
    result       TEXT,                               -- the script's `result`
    keys         TEXT NOT NULL DEFAULT '',
    duration     REAL,
    last_call_id TEXT,
    updated_at   REAL NOT NULL DEFAULT 0,
    UNIQUE (campaign_id, number)
);
CREATE INDEX contacts_due ON contacts (campaign_id, status, next_try_at, id);

CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id      INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    number          TEXT NOT NULL,
    attempt_number  INTEGER NOT NULL,
    started_at      REAL NOT NULL,
    answered_at     REAL,
    ended_at        REAL,
    state           TEXT NOT NULL DEFAULT 'dialling', -- dialling | answered | done | unknown
    outcome         TEXT,
    reason          TEXT NOT NULL DEFAULT '',
    uniqueid        TEXT,
    call_id         TEXT,
    amd             TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attempts_contact ON attempts (contact_id);
CREATE INDEX attempts_open ON attempts (campaign_id, state);

CREATE TABLE campaign_rejects (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    line         INTEGER NOT NULL,
    number       TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL
);
CREATE INDEX campaign_rejects_campaign ON campaign_rejects (campaign_id, line)
