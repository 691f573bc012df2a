-- sessiond schema, version 1.
-- Every instant is stored as INTEGER milliseconds since the Unix epoch (UTC):
-- exact, cheap to compare, and free of text-format ambiguity.

CREATE TABLE accounts (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    -- Per-account overrides of the session policy; NULL means "use the system default".
    idle_minutes     INTEGER CHECK (idle_minutes IS NULL OR idle_minutes > 0),
    absolute_minutes INTEGER CHECK (absolute_minutes IS NULL OR absolute_minutes > 0),
    created_at       INTEGER NOT NULL,
    -- When both overrides are set, the database itself refuses idle > absolute.
    CONSTRAINT idle_not_above_absolute
        CHECK (idle_minutes IS NULL OR absolute_minutes IS NULL OR idle_minutes <= absolute_minutes)
) STRICT;

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    -- Stored lower-cased: emails are unique and matched case-insensitively.
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'engineer')),
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX users_by_account ON users (account_id);

-- A session is the chain of refresh tokens that share a session_id; each
-- refresh revokes the presented token and inserts its successor.
CREATE TABLE refresh_tokens (
    id                 TEXT PRIMARY KEY NOT NULL,
    session_id         TEXT NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users (id),
    -- SHA-256 of the token; the token itself is never stored.
    token_hash         BLOB NOT NULL UNIQUE,
    session_started_at INTEGER NOT NULL,
    -- The login or refresh that issued this token: the idle clock starts here.
    issued_at          INTEGER NOT NULL,
    revoked_at         INTEGER,
    -- Set when the token was exchanged by rotation: the successor's id.
    replaced_by        TEXT,
    user_agent         TEXT,
    ip                 TEXT
) STRICT;

-- Partial indexes over the live tokens only: the bulk revoke, the per-session
-- revoke and the per-request session check never touch revoked history.
CREATE INDEX refresh_tokens_active_by_user
    ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_active_by_session
    ON refresh_tokens (session_id) WHERE revoked_at IS NULL;

CREATE TABLE audit_events (
    -- seq gives the one total order of events (insertion = commit order,
    -- since writers are serialised); id is the public identifier.
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    user_id       TEXT REFERENCES users (id),
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT,
    details       TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX audit_events_by_account ON audit_events (account_id, seq);
