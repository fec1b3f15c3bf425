-- Campaigns an office can trust: attempt tokens, each callee's time zone, the columns the export shows.
-- attempt_key: the campaign's random key. An attempt's token (AUTOCALL_ATTEMPT) is its id and an HMAC of
-- the id and the number under this key, so it cannot be guessed nor moved to another attempt.
ALTER TABLE campaigns ADD COLUMN attempt_key TEXT NOT NULL DEFAULT '';
-- {param: header} as the list was read (--column and case-insensitive matches), for the export.
ALTER TABLE campaigns ADD COLUMN param_headers TEXT NOT NULL DEFAULT '{}';
-- The script's non-secret variables and gathered names, exported as columns (the answered call's values).
ALTER TABLE campaigns ADD COLUMN variables TEXT NOT NULL DEFAULT '[]';
-- The callee's time zone (from the number or the list's timezone column), NULL: the --timezone of the window.
ALTER TABLE contacts ADD COLUMN timezone TEXT;
-- 1 while the contact's next try was moved to the opening of its calling window.
ALTER TABLE contacts ADD COLUMN window_wait INTEGER NOT NULL DEFAULT 0;
-- When the FastAGI server first presented this attempt's token: a second use is a replay.
ALTER TABLE attempts ADD COLUMN token_used_at REAL
;
-- Answered attempts still without their call record: looked at on every start and status (few rows).
CREATE INDEX attempts_without_record ON attempts (campaign_id)
    WHERE call_id IS NULL AND outcome IN ('answered', 'machine', 'no_script')
