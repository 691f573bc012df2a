-- sessiond schema, version 7: the token table's own ids stored as 16 bytes (issue 11).
--
-- Version 6 clustered the table by (user_id, session_id, id), and a WITHOUT ROWID
-- table's every index entry carries that whole key: three 36-character UUIDs, more
-- than half of each entry. The token's id, its session's id and its successor's id
-- (`replaced_by`) are now BLOBs of 16 bytes, so the key, the rows and the index
-- entries are narrower and a revoke or rotation writes fewer pages. `user_id` stays
-- the text of `users.id`, which it joins. Ids elsewhere (users, accounts, audit events,
-- `revoked_by_event`) stay text, as on PostgreSQL, where nothing changes.
--
-- The rebuild is version 6's: old indexes dropped, rows copied in the new key's order
-- (the byte order of a UUID is the order of its text, so it is version 6's order), the
-- old table dropped, the indexes built again.

DROP INDEX refresh_tokens_active_by_user;
DROP INDEX refresh_tokens_revoked;
DROP INDEX refresh_tokens_ended_by_session;
ALTER TABLE refresh_tokens RENAME TO refresh_tokens_v6;

CREATE TABLE refresh_tokens (
    id                   BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
    session_id           BLOB NOT NULL CHECK (length(session_id) = 16),
    user_id              TEXT NOT NULL REFERENCES users (id),
    -- SHA-256 of the token; the token itself is never stored.
    token_hash           BLOB NOT NULL UNIQUE,
    session_started_at   INTEGER NOT NULL,
    -- The login or refresh that issued this token: the idle clock starts here.
    issued_at            INTEGER NOT NULL,
    revoked_at           INTEGER,
    -- Set when the token was exchanged by rotation: the successor's id.
    replaced_by          BLOB CHECK (replaced_by IS NULL OR length(replaced_by) = 16),
    user_agent           TEXT,
    ip                   TEXT,
    revoke_reason        TEXT
        CHECK (revoke_reason IS NULL OR revoke_reason IN (
            'logged_out', 'rotated', 'reuse_detected', 'revoked_all', 'revoked_others',
            'revoked_single', 'user_disabled', 'password_changed', 'idle_timeout',
            'absolute_timeout')),
    revoked_by_event     TEXT,
    revoke_limit_minutes INTEGER,
    PRIMARY KEY (user_id, session_id, id)
) STRICT, WITHOUT ROWID;

INSERT INTO refresh_tokens
    (id, session_id, user_id, token_hash, session_started_at, issued_at, revoked_at,
     replaced_by, user_agent, ip, revoke_reason, revoked_by_event, revoke_limit_minutes)
SELECT unhex(replace(id, '-', '')), unhex(replace(session_id, '-', '')), user_id,
       token_hash, session_started_at, issued_at, revoked_at,
       unhex(replace(replaced_by, '-', '')), user_agent, ip, revoke_reason,
       revoked_by_event, revoke_limit_minutes
FROM refresh_tokens_v6
ORDER BY user_id, session_id, id;

DROP TABLE refresh_tokens_v6;

-- The indexes of version 6, unchanged (see migrations/sqlite/V6__tokens_by_user.sql).
CREATE INDEX refresh_tokens_active_by_user
    ON refresh_tokens (user_id, session_id, id) WHERE revoked_at IS NULL;

CREATE INDEX refresh_tokens_revoked
    ON refresh_tokens (revoked_at, id) WHERE revoked_at IS NOT NULL;

CREATE INDEX refresh_tokens_ended_by_session
    ON refresh_tokens (user_id, session_id, revoked_at)
    WHERE revoked_at IS NOT NULL AND replaced_by IS NULL;

-- The planner's figures of version 6 again: a dropped table takes its rows of
-- sqlite_stat1 with it.
DELETE FROM sqlite_stat1 WHERE tbl IN ('refresh_tokens', 'refresh_tokens_v6');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('refresh_tokens', 'refresh_tokens', '1000000 100 20 1'),
    ('refresh_tokens', 'sqlite_autoindex_refresh_tokens_1', '1000000 1'),
    ('refresh_tokens', 'sqlite_autoindex_refresh_tokens_2', '1000000 1'),
    ('refresh_tokens', 'refresh_tokens_active_by_user', '20000 4 1 1'),
    ('refresh_tokens', 'refresh_tokens_revoked', '980000 2 1'),
    ('refresh_tokens', 'refresh_tokens_ended_by_session', '20000 4 1 1');
