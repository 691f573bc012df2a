-- sessiond schema, version 2: why each refresh token was revoked (contract §4c).
-- revoke_reason is one of the names in src/revocation.rs; revoked_by_event is the
-- audit event of the owner action, disable, password change, logout or reuse
-- detection that revoked the token (NULL for rotation and timeouts);
-- revoke_limit_minutes is the limit a timeout applied. All are written by the
-- statement that sets revoked_at.
ALTER TABLE refresh_tokens ADD COLUMN revoke_reason TEXT
    CHECK (revoke_reason IS NULL OR revoke_reason IN (
        'logged_out', 'rotated', 'reuse_detected', 'revoked_all', 'revoked_others',
        'revoked_single', 'user_disabled', 'password_changed', 'idle_timeout',
        'absolute_timeout'));
ALTER TABLE refresh_tokens ADD COLUMN revoked_by_event TEXT;
ALTER TABLE refresh_tokens ADD COLUMN revoke_limit_minutes INTEGER;

-- Tokens revoked before version 2: a rotation is known by its successor; any
-- other cause was not recorded and is reported as unknown_token.
UPDATE refresh_tokens SET revoke_reason = 'rotated' WHERE replaced_by IS NOT NULL;
