-- Cubes carry the checksum of their file (verified before use) and, once a check failed, why they
-- must be rebuilt (the preprocess step then treats them as missing).
ALTER TABLE datacube ADD COLUMN sha256 text, ADD COLUMN stale_reason text;
COMMENT ON COLUMN datacube.sha256 IS 'SHA-256 of the cube file when it was registered; checked before every use';
COMMENT ON COLUMN datacube.stale_reason IS 'why the cube must be rebuilt (its file no longer matches), NULL while usable';

-- At most one change row per AOI, detection year, classes and geometry: overlapping writers of a
-- year can no longer duplicate rows. Duplicates left by earlier overlapping runs go first (a
-- reviewed row is kept over a pending one, then the oldest).
DELETE FROM lc_change WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (
            PARTITION BY aoi, year, from_class, to_class, md5(ST_AsBinary(geom))
            ORDER BY (status = 'pending'), id
        ) AS n FROM lc_change
    ) ranked WHERE n > 1
);
CREATE UNIQUE INDEX lc_change_identity_idx
    ON lc_change (aoi, year, from_class, to_class, md5(ST_AsBinary(geom)));
