-- DSN inventory. Times are Unix nanoseconds (UTC); NULL last_seen_ns means never seen.
-- IDs and keys use the "C" collation so that ordering and paging are byte order, as in SQLite.
CREATE TABLE dsns (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    software_version TEXT   NOT NULL DEFAULT '',
    site             TEXT   NOT NULL DEFAULT '',
    rack             TEXT   NOT NULL DEFAULT '',
    state            TEXT   NOT NULL,
    applied_revision BIGINT NOT NULL DEFAULT 0,
    last_seen_ns     BIGINT,
    created_ns       BIGINT NOT NULL,
    updated_ns       BIGINT NOT NULL
);
CREATE INDEX dsns_state ON dsns (state, id);

CREATE TABLE dsn_labels (
    dsn_id TEXT COLLATE "C" NOT NULL REFERENCES dsns (id) ON DELETE CASCADE,
    key    TEXT COLLATE "C" NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (dsn_id, key)
);
CREATE INDEX dsn_labels_key_value ON dsn_labels (key, value, dsn_id);

CREATE TABLE dsn_versions (
    seq              BIGSERIAL PRIMARY KEY,
    dsn_id           TEXT COLLATE "C" NOT NULL REFERENCES dsns (id) ON DELETE CASCADE,
    software_version TEXT   NOT NULL,
    at_ns            BIGINT NOT NULL
);
CREATE INDEX dsn_versions_dsn ON dsn_versions (dsn_id, seq);

-- Admissions may name DSNs never admitted, so no foreign key.
CREATE TABLE admissions (
    seq     BIGSERIAL PRIMARY KEY,
    dsn_id  TEXT COLLATE "C" NOT NULL,
    at_ns   BIGINT NOT NULL,
    outcome TEXT   NOT NULL
);
CREATE INDEX admissions_dsn ON admissions (dsn_id, at_ns, seq);
CREATE INDEX admissions_at ON admissions (at_ns);
