#!/usr/bin/env python3
"""Fills a sessiond database at schema version 5 with refresh tokens, for timing the
version 6 migration (docs/PERFORMANCE.md, "Account-local revoke").

    sessiond-v5 --database FILE migrate       # a sessiond built before version 6
    python3 bench/scripts/seed_v5_tokens.py FILE 1000000
    /usr/bin/time -v target/release/sessiond --database FILE migrate

Rows are written in time order across accounts, as logins and refreshes would: 1 000
accounts of 10 users, random UUIDs as the server makes them, one token in five live, the
rest rotated (with a successor) or revoked with a reason, user agents and addresses like
a browser's.
"""
import os
import random
import sqlite3
import sys
import uuid

path, count = sys.argv[1], int(sys.argv[2])
random.seed(6)
conn = sqlite3.connect(path)
version = conn.execute("SELECT max(version) FROM refinery_schema_history").fetchone()[0]
if version != 5:
    sys.exit(f"{path} is at schema version {version}, not 5")
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = OFF")
users = []
with conn:
    for a in range(1000):
        account = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, 0)", (account, f"acct{a}")
        )
        for u in range(10):
            user = str(uuid.uuid4())
            role = "owner" if u == 0 else "engineer"
            conn.execute(
                "INSERT INTO users (id, account_id, email, password_hash, role, created_at)"
                " VALUES (?, ?, ?, 'x', ?, 0)",
                (user, account, f"u{u}@a{a}.test", role),
            )
            users.append(user)
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
t0 = 1_700_000_000_000
with conn:
    for i in range(count):
        user = random.choice(users)
        at = t0 + i * 1000
        live = random.random() < 0.2
        if live:
            revoked, replaced, reason = None, None, None
        elif random.random() < 0.8:
            revoked, replaced, reason = at + 900_000, str(uuid.uuid4()), "rotated"
        else:
            revoked, replaced, reason = at + 600_000, None, "logged_out"
        conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash,"
            " session_started_at, issued_at, revoked_at, replaced_by, user_agent, ip,"
            " revoke_reason, revoked_by_event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(uuid.uuid4()), str(uuid.uuid4()), user, os.urandom(32), at, at, revoked,
                replaced, UA, f"10.{i % 250}.{i // 250 % 250}.{i % 7}", reason,
                None if reason != "logged_out" else str(uuid.uuid4()),
            ),
        )
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(conn.execute("SELECT count(*) FROM refresh_tokens").fetchone()[0], "tokens in", path)
