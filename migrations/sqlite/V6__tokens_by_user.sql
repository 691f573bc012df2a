-- sessiond schema, version 6: refresh tokens clustered by user (issue 11, account-local
-- revoke).
--
-- Until version 5 the token table was a rowid table: rows sat in insertion order, so one
-- account's tokens were spread over as many pages as there are tokens, among every other
-- account's, and two of the four indexes a revoke changes were keyed by random session
-- ids. The bulk revoke wrote about two pages per token once the table was large.
--
-- Now the table is WITHOUT ROWID with the key (user_id, session_id, id): a user's rows,
-- and within them each session's chain, share pages. Every index a revoke changes (the
-- ones whose columns or WHERE involve revoked_at) starts with the user or with the
-- revoke's instant, so one account's revoke writes pages of its own users only (and the
-- end of the index over revoked tokens, where all revokes append). The lookups by token
-- id and by hash use plain unique indexes, never changed by a revoke.
--
-- The rebuild: the old indexes are dropped first (the copy need not maintain them), the
-- rows copied in key order (each page filled once, left to right), the old table
-- dropped, the indexes built. Same columns, STRICT, and the CHECK of version 2.

DROP INDEX refresh_tokens_active_by_user;
DROP INDEX refresh_tokens_active_by_session;
DROP INDEX refresh_tokens_revoked;
DROP INDEX refresh_tokens_ended_by_session;
ALTER TABLE refresh_tokens RENAME TO refresh_tokens_v5;

CREATE TABLE refresh_tokens (
    id                   TEXT NOT NULL UNIQUE,
    session_id           TEXT NOT NULL,
    user_id              TEXT NOT NULL REFERENCES users (id),
    -- SHA-256 of the token; the token itself is never stored.
    token_hash           BLOB NOT NULL UNIQUE,
    session_started_at   INTEGER NOT NULL,
    -- The login or refresh that issued this token: the idle clock starts here.
    issued_at            INTEGER NOT NULL,
    revoked_at           INTEGER,
    -- Set when the token was exchanged by rotation: the successor's id.
    replaced_by          TEXT,
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
SELECT id, session_id, user_id, token_hash, session_started_at, issued_at, revoked_at,
       replaced_by, user_agent, ip, revoke_reason, revoked_by_event, revoke_limit_minutes
FROM refresh_tokens_v5
ORDER BY user_id, session_id, id;

DROP TABLE refresh_tokens_v5;

-- Live tokens by user and session: the bulk revokes (account, user), a session's revoke,
-- the per-request session check, the owner's session list, the prune's scan of live
-- tokens (in this order, the key's id last). A revoke deletes its rows' entries: those
-- of its own users, side by side.
CREATE INDEX refresh_tokens_active_by_user
    ON refresh_tokens (user_id, session_id, id) WHERE revoked_at IS NULL;

-- Revoked tokens by age (the prune reads the oldest first, and only those); the id
-- orders a scan's cursor. Every revoke appends here, at the end.
CREATE INDEX refresh_tokens_revoked
    ON refresh_tokens (revoked_at, id) WHERE revoked_at IS NOT NULL;

-- The token that ended each session (revoked, never exchanged), by user and session: with
-- the index over live tokens, whether a whole session ended before the retention cutoff
-- is answered from indexes alone. Keyed by user first, so that a bulk revoke (which ends
-- every session it touches) inserts side by side.
CREATE INDEX refresh_tokens_ended_by_session
    ON refresh_tokens (user_id, session_id, revoked_at)
    WHERE revoked_at IS NOT NULL AND replaced_by IS NULL;

-- The planner's view of the token table. The table and the index over live tokens share
-- their leading columns, and without statistics SQLite prefers the table's own key for
-- `user_id = ?`: a walk over every token of the user, rotated history included (about
-- one row per refresh until pruning), to stamp the few live ones. These figures say what
-- a deployment's table looks like (most rows history; few live per user, one per
-- session), so the planner takes the live index; `ANALYZE` replaces them with the real
-- counts. (The manual control of plans through sqlite_stat1 that SQLite documents.)
ANALYZE sqlite_master;
DELETE FROM sqlite_stat1 WHERE tbl = 'refresh_tokens';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('refresh_tokens', 'refresh_tokens', '1000000 100 20 1'),
    ('refresh_tokens', 'sqlite_autoindex_refresh_tokens_1', '1000000 1'),
    ('refresh_tokens', 'sqlite_autoindex_refresh_tokens_2', '1000000 1'),
    ('refresh_tokens', 'refresh_tokens_active_by_user', '20000 4 1 1'),
    ('refresh_tokens', 'refresh_tokens_revoked', '980000 2 1'),
    ('refresh_tokens', 'refresh_tokens_ended_by_session', '20000 4 1 1');
