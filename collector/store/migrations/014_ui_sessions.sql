-- The UI's login sessions (collector/login_sessions.py). The cookie holds a random id; this
-- table holds only its SHA-256, so a row opens nothing. A session is one row when opened and a
-- second, revoked, row at logout; it is valid while it has no revoked row, before expires_at,
-- and while token_binding (a keyed hash of the id under the token that opened it) matches a
-- configured API token: a token taken out of the configuration ends its sessions.
CREATE TABLE IF NOT EXISTS {database}.ui_sessions
(
    session_hash String,
    token_binding String,
    created_at DateTime64(3),
    expires_at DateTime64(3),
    revoked Bool
)
ENGINE = MergeTree
ORDER BY session_hash
TTL toDateTime(expires_at) + INTERVAL 1 DAY;
