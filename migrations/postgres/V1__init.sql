-- sessiond schema, version 1 (PostgreSQL). The same tables, columns and indexes as
-- migrations/sqlite/V1__init.sql, in the same representation, so that every statement
-- in src/db/ is the same text on both: instants as BIGINT milliseconds since the Unix
-- epoch (UTC), UUIDs as their text, flags as 0/1 integers, JSON as text, hashes as bytes.
-- Integers are BIGINT throughout (SQLite's INTEGER is 64-bit).

CREATE TABLE accounts (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    -- Per-account overrides of the session policy; NULL means "use the system default".
    idle_minutes     BIGINT CHECK (idle_minutes IS NULL OR idle_minutes > 0),
    absolute_minutes BIGINT CHECK (absolute_minutes IS NULL OR absolute_minutes > 0),
    created_at       BIGINT NOT NULL,
    -- When both overrides are set, the database itself refuses idle > absolute.
    CONSTRAINT idle_not_above_absolute
        CHECK (idle_minutes IS NULL OR absolute_minutes IS NULL OR idle_minutes <= absolute_minutes)
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    -- Stored lower-cased: emails are unique and matched case-insensitively.
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'engineer')),
    is_active     BIGINT NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    BIGINT NOT NULL
);

CREATE INDEX users_by_account ON users (account_id);

-- A session is the chain of refresh tokens that share a session_id; each
-- refresh revokes the presented token and inserts its successor.
CREATE TABLE refresh_tokens (
    -- SQLite's implicit rowid, made a column: the prune's cursors and deletes use it.
    rowid              BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id                 TEXT PRIMARY KEY NOT NULL,
    session_id         TEXT NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users (id),
    -- SHA-256 of the token; the token itself is never stored.
    token_hash         BYTEA NOT NULL UNIQUE,
    session_started_at BIGINT NOT NULL,
    -- The login or refresh that issued this token: the idle clock starts here.
    issued_at          BIGINT NOT NULL,
    revoked_at         BIGINT,
    -- Set when the token was exchanged by rotation: the successor's id.
    replaced_by        TEXT,
    user_agent         TEXT,
    ip                 TEXT
);

-- Partial indexes over the live tokens only: the bulk revoke, the per-session
-- revoke and the per-request session check never touch revoked history. (SQLite's
-- indexes end with the rowid implicitly; here it is spelled out where the prune's
-- cursor orders by it.)
CREATE INDEX refresh_tokens_active_by_user
    ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_active_by_session
    ON refresh_tokens (session_id, rowid) WHERE revoked_at IS NULL;

CREATE TABLE audit_events (
    -- seq gives the order of events (insertion order; with several processes, two
    -- concurrent transactions may commit in the other order); id is the public
    -- identifier.
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    user_id       TEXT REFERENCES users (id),
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT,
    details       TEXT NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL
);

CREATE INDEX audit_events_by_account ON audit_events (account_id, seq);
