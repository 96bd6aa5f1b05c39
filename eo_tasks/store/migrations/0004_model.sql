-- Trained models: one row per training run that produced a model, with its model card.
CREATE TABLE model (
    id            text PRIMARY KEY,                -- <aoi>_<backend>_<architecture>_<UTC timestamp>
    aoi           text NOT NULL,
    backend       text NOT NULL,
    architecture  text NOT NULL,
    path          text NOT NULL,                   -- model directory (model file + model_card.json)
    training_set  text,                            -- the training-set HDF5 it was trained on
    slurm_job_id  text,
    accuracy      real,                            -- overall accuracy on the test split
    card          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_aoi_idx ON model (aoi, created_at DESC);
