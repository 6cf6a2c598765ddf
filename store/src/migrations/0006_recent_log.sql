-- perfstore schema, version 6: the recent log. A flush that touches many series is written
-- as one row per 1024 series ids (`bucket` = series id / 1024) holding those series' new
-- points, instead of one head row rewritten per series; the writer folds the rows into the
-- heads at maintenance and when the log passes its size budget. Readers merge these rows
-- with the heads, so a binary of schema 5, which would not see them, refuses the file as
-- too new. Row format: perfstore's src/recent.rs.
CREATE TABLE IF NOT EXISTS recent (
    id INTEGER PRIMARY KEY,
    bucket INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    points INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS recent_by_bucket ON recent (bucket, end_ms);
