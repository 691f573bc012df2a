-- sessiond schema, version 3: indexes for pruning old refresh tokens
-- (`sessiond prune` and the server's hourly prune).

-- Revoked tokens by age: the prune reads the oldest first, and only those.
CREATE INDEX refresh_tokens_revoked
    ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;

-- The revoked tokens of a session, by revocation instant: with the partial index over
-- live tokens, whether a whole session ended before the retention cutoff is answered
-- from indexes alone. Live tokens stay out of it, so the hot statements, which look for
-- `revoked_at IS NULL`, keep their own indexes and a new token costs nothing here.
CREATE INDEX refresh_tokens_revoked_by_session
    ON refresh_tokens (session_id, revoked_at) WHERE revoked_at IS NOT NULL;
