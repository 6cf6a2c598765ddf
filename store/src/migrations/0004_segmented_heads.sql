-- perfstore schema, version 4: an open head may hold its points as segments (chunk format 3),
-- so a flush encodes only its newest points; a head that fills is sealed as a piece here,
-- and the hour's pieces become full chunks when the hour closes. Readers take pieces as part
-- of the head. Same columns as chunk.
CREATE TABLE IF NOT EXISTS head_piece (
    id         INTEGER PRIMARY KEY,
    series_id  INTEGER NOT NULL,
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
CREATE INDEX IF NOT EXISTS head_piece_by_series ON head_piece (series_id, start_ms);
