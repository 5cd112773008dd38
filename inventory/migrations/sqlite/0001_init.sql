-- DSN inventory. Times are Unix nanoseconds (UTC); NULL last_seen_ns means never seen.
CREATE TABLE dsns (
    id               TEXT    NOT NULL PRIMARY KEY,
    software_version TEXT    NOT NULL DEFAULT '',
    site             TEXT    NOT NULL DEFAULT '',
    rack             TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL,
    applied_revision INTEGER NOT NULL DEFAULT 0,
    last_seen_ns     INTEGER,
    created_ns       INTEGER NOT NULL,
    updated_ns       INTEGER NOT NULL
);
CREATE INDEX dsns_state ON dsns (state, id);

CREATE TABLE dsn_labels (
    dsn_id TEXT NOT NULL REFERENCES dsns (id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (dsn_id, key)
);
CREATE INDEX dsn_labels_key_value ON dsn_labels (key, value, dsn_id);

CREATE TABLE dsn_versions (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    dsn_id           TEXT    NOT NULL REFERENCES dsns (id) ON DELETE CASCADE,
    software_version TEXT    NOT NULL,
    at_ns            INTEGER NOT NULL
);
CREATE INDEX dsn_versions_dsn ON dsn_versions (dsn_id, seq);

-- Admissions may name DSNs never admitted, so no foreign key.
CREATE TABLE admissions (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    dsn_id  TEXT    NOT NULL,
    at_ns   INTEGER NOT NULL,
    outcome TEXT    NOT NULL
);
CREATE INDEX admissions_dsn ON admissions (dsn_id, at_ns, seq);
CREATE INDEX admissions_at ON admissions (at_ns);
