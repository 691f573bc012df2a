-- sessiond schema, version 3 (PostgreSQL): indexes for pruning old refresh tokens. As
-- migrations/sqlite/V3__prune_indexes.sql (the rowid spelled out, see V1).

CREATE INDEX refresh_tokens_revoked
    ON refresh_tokens (revoked_at, rowid) WHERE revoked_at IS NOT NULL;

CREATE INDEX refresh_tokens_ended_by_session
    ON refresh_tokens (session_id, revoked_at)
    WHERE revoked_at IS NOT NULL AND replaced_by IS NULL;
