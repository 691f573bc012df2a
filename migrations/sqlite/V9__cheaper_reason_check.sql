-- sessiond schema, version 9: the CHECK on `revoke_reason` costs less per revoked row.
--
-- Every statement that revokes tokens sets `revoke_reason`, so SQLite evaluates that
-- column's CHECK once per row, and an IN list there made a third of the bulk revoke's
-- statement: 10 000 rows in 55 to 60 ms with it, 36 to 42 ms without any CHECK, 44 to
-- 48 ms with the same names as a chain of equalities (docs/PERFORMANCE.md). The chain
-- allows exactly the names the IN list allowed, so the table's rows, which already
-- satisfy it, do not change. 'rotated' comes first: every refresh writes it.
--
-- The table is not rebuilt. A CHECK constraint lives only in the schema's text, and
-- SQLite documents editing that text under `PRAGMA writable_schema` for changes that
-- leave the stored content as it is, such as a CHECK constraint (the "other kinds of
-- table schema changes" of its ALTER TABLE page). `writable_schema = RESET` reloads this
-- connection's schema; the table created and dropped after it moves the schema cookie, so
-- that any other connection reloads it too.
PRAGMA writable_schema = ON;

UPDATE sqlite_schema
SET sql = replace(sql,
'CHECK (revoke_reason IS NULL OR revoke_reason IN (
            ''logged_out'', ''rotated'', ''reuse_detected'', ''revoked_all'', ''revoked_others'',
            ''revoked_single'', ''user_disabled'', ''password_changed'', ''idle_timeout'',
            ''absolute_timeout''))',
'CHECK (revoke_reason IS NULL OR revoke_reason = ''rotated''
            OR revoke_reason = ''revoked_all'' OR revoke_reason = ''revoked_others''
            OR revoke_reason = ''logged_out'' OR revoke_reason = ''reuse_detected''
            OR revoke_reason = ''revoked_single'' OR revoke_reason = ''user_disabled''
            OR revoke_reason = ''password_changed'' OR revoke_reason = ''idle_timeout''
            OR revoke_reason = ''absolute_timeout'')')
WHERE type = 'table' AND name = 'refresh_tokens';

PRAGMA writable_schema = RESET;

CREATE TABLE schema_cookie_v9 (x INTEGER);
DROP TABLE schema_cookie_v9;
