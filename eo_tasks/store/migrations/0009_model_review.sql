-- Models are reviewed before the maps use them: pending until approved (or rejected) by a person,
-- or approved by the AOI's auto-approval. Models registered before this migration were in use: approved.
ALTER TABLE model ADD COLUMN status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'approved', 'rejected'));
ALTER TABLE model ADD COLUMN reviewed_by text;
ALTER TABLE model ADD COLUMN reviewed_at timestamptz;
UPDATE model SET status = 'approved', reviewed_by = 'migration 0009', reviewed_at = now();
CREATE INDEX model_aoi_approved_idx ON model (aoi, created_at DESC) WHERE status = 'approved';
COMMENT ON COLUMN model.status IS 'pending until a person (or the AOI''s auto_approve) decides; maps use approved models only';
COMMENT ON COLUMN model.reviewed_by IS 'who approved or rejected the model (the Airflow user, or auto-approve)';
COMMENT ON COLUMN model.reviewed_at IS 'when the model was approved or rejected';
