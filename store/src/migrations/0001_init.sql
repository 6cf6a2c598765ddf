-- perfstore schema, version 1. Append-only: never edit a shipped step, add 0002_*.sql.
-- Timestamps are Unix milliseconds (UTC). See store/src/lib.rs for the data model.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Interned label sets: canonical JSON array of [key, value] pairs sorted by key.
CREATE TABLE labelset (
    id     INTEGER PRIMARY KEY,
    labels TEXT NOT NULL UNIQUE
);

CREATE TABLE series (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        INTEGER NOT NULL,      -- 0 counter, 1 gauge, 2 distribution, 3 set
    unit        TEXT NOT NULL,
    labelset_id INTEGER NOT NULL REFERENCES labelset (id),
    created_ms  INTEGER NOT NULL,
    UNIQUE (name, labelset_id)
);

-- Sealed chunks of every tier (0 raw, 1 one-minute rollups, 2 one-hour rollups). The plain
-- columns summarise the whole chunk so coarse questions need no decoding.
CREATE TABLE chunk (
    id         INTEGER PRIMARY KEY,
    series_id  INTEGER NOT NULL,
    tier       INTEGER NOT NULL,
    start_ms   INTEGER NOT NULL,       -- first point
    end_ms     INTEGER NOT NULL,       -- last point
    points     INTEGER NOT NULL,
    count      REAL NOT NULL,
    sum        REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    last       REAL NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    sketch     BLOB,                   -- merged sketch of all points (distributions)
    data       BLOB NOT NULL
);
CREATE INDEX chunk_by_series ON chunk (series_id, tier, start_ms);
CREATE INDEX chunk_by_age ON chunk (tier, end_ms);

-- The open (unsealed) raw chunk of each series, rewritten at every flush so unsealed points
-- survive a crash. Same columns as chunk.
CREATE TABLE head (
    series_id  INTEGER PRIMARY KEY,
    start_ms   INTEGER NOT NULL,
    end_ms     INTEGER NOT NULL,
    points     INTEGER NOT NULL,
    count      REAL NOT NULL,
    sum        REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    last       REAL NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    sketch     BLOB,
    data       BLOB NOT NULL
);

-- Merged summary of one closed hour of a distribution's sealed raw chunks: a day's query
-- merges 24 sketches instead of one per chunk. Written when the hour's head is sealed,
-- rewritten when late data lands in the hour, dropped when the hour's raw data goes.
CREATE TABLE hour_summary (
    hour_ms    INTEGER NOT NULL,
    series_id  INTEGER NOT NULL,
    count      REAL NOT NULL,
    sum        REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    last       REAL NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    sketch     BLOB,
    PRIMARY KEY (hour_ms, series_id)
) WITHOUT ROWID;

-- Folded stacks, de-duplicated: frames joined by ';', root first.
CREATE TABLE stack (
    id     INTEGER PRIMARY KEY,
    hash   INTEGER NOT NULL,
    frames TEXT NOT NULL
);
CREATE INDEX stack_by_hash ON stack (hash);

CREATE TABLE profile (
    service  TEXT NOT NULL,
    op       TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms   INTEGER NOT NULL,
    stack_id INTEGER NOT NULL REFERENCES stack (id),
    samples  INTEGER NOT NULL
);
CREATE INDEX profile_by_op ON profile (op, start_ms);
CREATE INDEX profile_by_age ON profile (end_ms);

-- A small bounded log (the last errors of each operation), never a metric label.
CREATE TABLE event (
    id      INTEGER PRIMARY KEY,
    ts_ms   INTEGER NOT NULL,
    service TEXT NOT NULL,
    op      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX event_by_op ON event (service, op, kind, ts_ms);
