-- sessiond schema, version 2 (PostgreSQL): why each refresh token was revoked
-- (contract §4c). As migrations/sqlite/V2__revoke_reasons.sql.
ALTER TABLE refresh_tokens ADD COLUMN revoke_reason TEXT
    CHECK (revoke_reason IS NULL OR revoke_reason IN (
        'logged_out', 'rotated', 'reuse_detected', 'revoked_all', 'revoked_others',
        'revoked_single', 'user_disabled', 'password_changed', 'idle_timeout',
        'absolute_timeout'));
ALTER TABLE refresh_tokens ADD COLUMN revoked_by_event TEXT;
ALTER TABLE refresh_tokens ADD COLUMN revoke_limit_minutes BIGINT;

UPDATE refresh_tokens SET revoke_reason = 'rotated' WHERE replaced_by IS NOT NULL;
