-- perfstore schema, version 5. Chunks may be written in formats 4 and 5, whose value columns
-- have a third mode, float deltas (doubles' bit patterns as order-preserving integers, coded
-- as deltas). No table changes: the version is raised so that a binary of schema 4, which
-- cannot read those chunks, refuses the file as too new instead of reporting it as corrupt.
-- Chunks of formats 1 and 2 are still read.
--
-- Raw chunks of counters and gauges may now span up to a day, so readers look a day back for
-- chunks that overlap a range. With end_ms in the series index, the ones that end before the
-- range are skipped in the index, without reading their rows: an hour of one timer read 13
-- pages instead of 189.
DROP INDEX IF EXISTS chunk_by_series;
CREATE INDEX chunk_by_series ON chunk (series_id, tier, start_ms, end_ms);
