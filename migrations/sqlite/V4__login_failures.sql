-- sessiond schema, version 4 (SQLite): the login throttle's counts, kept in the database (on
-- SQLite and PostgreSQL alike). Written to be portable: the PostgreSQL twin differs only
-- in column types (BIGINT for the integers) and has no STRICT.

-- Failed logins per (email, client address), the login throttle's counts. Kept in the
-- database, so every process counts the same failures, a restart forgets nothing, and
-- `sessiond user unlock` can lift a lockout for a running server.
CREATE TABLE login_failures (
    -- Hex SHA-256 of the client address and the normalised email: a fixed size whatever
    -- the email, and no address or email stored in clear.
    pair_key        TEXT PRIMARY KEY NOT NULL,
    -- Hex SHA-256 of the normalised email alone: `user unlock` clears every address.
    email_key       TEXT NOT NULL,
    failures        INTEGER NOT NULL CHECK (failures > 0),
    -- The instant of the window's first failure (ms since the Unix epoch).
    window_start_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX login_failures_by_email ON login_failures (email_key);
-- The hourly prune deletes the rows whose window has closed, oldest first.
CREATE INDEX login_failures_by_window ON login_failures (window_start_ms);
