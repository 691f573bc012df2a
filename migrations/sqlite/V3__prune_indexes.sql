-- sessiond schema, version 3: indexes for pruning old refresh tokens
-- (`sessiond prune` and the server's hourly prune).

-- Revoked tokens by age: the prune reads the oldest first, and only those.
CREATE INDEX refresh_tokens_revoked
    ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;

-- The token that ended each session (revoked, never exchanged), by session: with the
-- partial index over live tokens, whether a whole session ended before the retention
-- cutoff is answered from indexes alone. A session's last token is revoked last, so its
-- instant is when the session ended. Live and rotated tokens stay out of it, so a
-- refresh (which rotates) costs nothing here: its keys are random session ids.
CREATE INDEX refresh_tokens_ended_by_session
    ON refresh_tokens (session_id, revoked_at)
    WHERE revoked_at IS NOT NULL AND replaced_by IS NULL;
