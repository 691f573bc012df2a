-- sessiond schema, version 4 (PostgreSQL): the login throttle's counts. As
-- migrations/sqlite/V4__login_failures.sql, with BIGINT for the integers.

-- Failed logins per (email, client address). Kept in the database, so every process
-- counts the same failures, a restart forgets nothing, and `sessiond user unlock` can
-- lift a lockout for a running server.
CREATE TABLE login_failures (
    -- Hex SHA-256 of the client address and the normalised email.
    pair_key        TEXT PRIMARY KEY NOT NULL,
    -- Hex SHA-256 of the normalised email alone: `user unlock` clears every address.
    email_key       TEXT NOT NULL,
    failures        BIGINT NOT NULL CHECK (failures > 0),
    -- The instant of the window's first failure (ms since the Unix epoch).
    window_start_ms BIGINT NOT NULL
);

CREATE INDEX login_failures_by_email ON login_failures (email_key);
-- The hourly prune deletes the rows whose window has closed, oldest first.
CREATE INDEX login_failures_by_window ON login_failures (window_start_ms);
