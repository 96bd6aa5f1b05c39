-- Training sets derived from a reference map and datacubes: one row per build, kept as history, so
-- a model (later issue) can name the exact training set it learned from (id + sha256 of the file).
CREATE TABLE training_set (
    id                bigserial PRIMARY KEY,
    aoi               text NOT NULL,
    path              text NOT NULL,
    sha256            text NOT NULL,
    years             integer[] NOT NULL,
    source_cubes      jsonb NOT NULL,   -- year -> {path, scene_fingerprint, created_at}
    reference         text NOT NULL,
    legend            text NOT NULL,
    n_samples         integer NOT NULL,
    samples_per_class jsonb NOT NULL,   -- class name -> {year -> samples}
    config            jsonb NOT NULL,
    report            jsonb NOT NULL,   -- annual reports (RF accuracy, filter, maps) + multi-year report
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX training_set_aoi_created ON training_set (aoi, created_at DESC);
