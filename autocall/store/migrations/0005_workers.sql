-- Several dialers on one campaign (docs/operations.md, "Several hosts"): each `campaign run` is a worker
-- with a lease it renews. The claims (attempts) of a worker whose lease ran out are settled by the others.
CREATE TABLE campaign_workers (
    worker       TEXT PRIMARY KEY,                   -- host:pid:random, unique per run
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    started_at   REAL NOT NULL,
    seen_at      REAL NOT NULL,                      -- its last heartbeat
    lease_until  REAL NOT NULL,                      -- its claims are its own until then
    pbx          TEXT NOT NULL DEFAULT ''            -- where it dials, for `campaign status`
);
CREATE INDEX campaign_workers_campaign ON campaign_workers (campaign_id, lease_until);

ALTER TABLE attempts ADD COLUMN worker TEXT NOT NULL DEFAULT '';   -- the worker that dialled it
ALTER TABLE campaigns ADD COLUMN next_dial_at REAL NOT NULL DEFAULT 0;  -- --rate, campaign-wide
