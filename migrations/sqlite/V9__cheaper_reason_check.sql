-- sessiond schema, version 9: the CHECK on `revoke_reason` costs less per revoked row.
--
-- Every statement that revokes tokens sets `revoke_reason`, so SQLite evaluates that
-- column's CHECK once per row, and inside a CHECK it builds the lookup table of an IN
-- list anew for every row (the list is reused only outside constraints: the
-- `iSelfTab` test of `sqlite3CodeRhsOfIN`). The bulk revoke's statement over 10 000
-- rows took 58 to 62 ms with the IN list, 47 to 49 ms with the same names as a chain of
-- equalities, 42 to 45 ms with no CHECK on the column (docs/PERFORMANCE.md). The chain
-- allows exactly the names the IN list allowed, and NULL, so every stored row still
-- satisfies it. 'rotated' comes first: every refresh writes it.
--
-- The table is not rebuilt: a CHECK constraint lives only in the schema's text, not in
-- the stored rows. SQLite's ALTER TABLE page describes editing that text under `PRAGMA
-- writable_schema` for changes that leave the stored content as it is, such as
-- removing a CHECK constraint; putting an equivalent one in its place is the same kind
-- of change. Its procedure then bumps the schema cookie: here the table created and
-- dropped below does that, so that any other connection reloads the schema, and
-- `writable_schema = RESET` reloads this connection's. The text replaced is exactly
-- what version 7 wrote; were it ever different, nothing would change and the IN list
-- would stay, as correct as before.
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
