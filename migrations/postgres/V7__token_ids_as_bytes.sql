-- sessiond schema, version 7 (PostgreSQL): nothing changes. On SQLite this version
-- stores the token table's own ids as 16-byte blobs, to narrow the key that every index
-- entry of its clustered (WITHOUT ROWID) table carries; here the heap and its indexes
-- never carried that key, and the ids stay text (the storage layer binds each backend's
-- form). The version exists so that both schemas keep one numbering.
SELECT 1;
