-- One row per (AOI, year) datacube: where it is and which scenes it was built from.
CREATE TABLE datacube (
    aoi               text NOT NULL,
    year              integer NOT NULL,
    path              text NOT NULL,
    scene_fingerprint text NOT NULL,
    scenes            text[] NOT NULL,
    skipped_scenes    jsonb NOT NULL DEFAULT '{}',
    n_composites      integer NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aoi, year)
);
