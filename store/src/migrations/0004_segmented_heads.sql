-- perfstore schema, version 4: an open head may hold its points as segments (chunk format 3),
-- so a flush encodes only its newest points. No table changes; the version keeps binaries
-- that cannot read the format from opening a store that may contain it.
SELECT 1;
