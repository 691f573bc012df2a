-- sessiond schema, version 6 (PostgreSQL): the token indexes of
-- migrations/sqlite/V6__tokens_by_user.sql, so that every statement is the same text on
-- both. SQLite's table became WITHOUT ROWID, clustered by (user_id, session_id, id);
-- a PostgreSQL heap keeps rows where they were written whatever the key, so here the
-- table stays, and only its indexes change:
-- - the `rowid` column (SQLite's implicit rowid, spelled out for the prune's cursors)
--   goes: the prune's cursors and deletes now use the token's key;
-- - the indexes a revoke changes are keyed by user (or by the revoke's instant), and
--   the lookups by id and hash stay on their unique indexes.

DROP INDEX refresh_tokens_active_by_user;
DROP INDEX refresh_tokens_active_by_session;
DROP INDEX refresh_tokens_revoked;
DROP INDEX refresh_tokens_ended_by_session;
ALTER TABLE refresh_tokens DROP COLUMN rowid;

CREATE INDEX refresh_tokens_active_by_user
    ON refresh_tokens (user_id, session_id, id) WHERE revoked_at IS NULL;

CREATE INDEX refresh_tokens_revoked
    ON refresh_tokens (revoked_at, id) WHERE revoked_at IS NOT NULL;

CREATE INDEX refresh_tokens_ended_by_session
    ON refresh_tokens (user_id, session_id, revoked_at)
    WHERE revoked_at IS NOT NULL AND replaced_by IS NULL;
