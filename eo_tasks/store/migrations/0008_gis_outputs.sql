-- Outputs that GIS users query as they expect: valid polygons, class names, spatial indexes, comments.

-- The platform's land-cover classes (eo_tasks/core/classes.py; tests/integration/test_gis_store.py
-- checks the rows match it).
CREATE TABLE lc_class (
    code   smallint PRIMARY KEY CHECK (code BETWEEN 1 AND 255),
    name   text NOT NULL UNIQUE CHECK (name ~ '^[0-9A-Za-z_-]+$'),
    title  text NOT NULL,
    colour text NOT NULL CHECK (colour ~ '^#[0-9a-f]{6}$')
);
INSERT INTO lc_class (code, name, title, colour) VALUES
    (1, 'artificial', 'Artificial surfaces', '#fa0000'),
    (2, 'cropland', 'Cropland', '#f096ff'),
    (3, 'grassland', 'Grassland', '#ffff4c'),
    (4, 'tree_cover', 'Tree cover', '#006400'),
    (5, 'shrubland', 'Shrubland', '#ffbb22'),
    (6, 'bare', 'Bare / sparse vegetation', '#b4b4b4'),
    (7, 'snow_ice', 'Snow and ice', '#f0f0f0'),
    (8, 'water', 'Permanent water bodies', '#0064c8'),
    (9, 'wetland', 'Herbaceous wetland', '#0096a0');

-- Change polygons are valid whatever the writer sends: GDAL's polygonize can return rings that
-- touch themselves at a pixel corner. ST_MakeValid splits them; only the polygonal parts are kept,
-- as a MultiPolygon. Valid geometries are stored untouched.
CREATE FUNCTION lc_change_make_valid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.geom IS NOT NULL AND NOT ST_IsValid(NEW.geom) THEN
        NEW.geom := ST_Multi(ST_CollectionExtract(ST_MakeValid(NEW.geom), 3));
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION lc_change_make_valid() IS
    'Trigger: makes lc_change.geom valid (ST_MakeValid, polygonal parts kept as a MultiPolygon)';
CREATE TRIGGER lc_change_valid_geom BEFORE INSERT OR UPDATE OF geom ON lc_change
    FOR EACH ROW EXECUTE FUNCTION lc_change_make_valid();
UPDATE lc_change SET geom = geom WHERE NOT ST_IsValid(geom);  -- rows stored before this migration

CREATE INDEX IF NOT EXISTS lc_map_footprint_idx ON lc_map USING gist (footprint);
CREATE INDEX IF NOT EXISTS lc_change_geom_idx ON lc_change USING gist (geom);
CREATE INDEX IF NOT EXISTS scene_footprint_idx ON scene USING gist (footprint);

-- Change polygons with their class names (a reviewer's relabel wins in final_class_*).
CREATE VIEW lc_change_named AS
SELECT c.id, c.aoi, c.year, c.geom, c.change_date, c.area_m2, c.status,
       c.from_class, f.name AS from_class_name, f.title AS from_class_title,
       c.to_class, t.name AS to_class_name, t.title AS to_class_title,
       c.new_class, n.name AS new_class_name,
       coalesce(c.new_class, c.to_class) AS final_class,
       coalesce(n.name, t.name) AS final_class_name,
       coalesce(n.colour, t.colour) AS final_class_colour,
       c.reviewed_by, c.reviewed_at
FROM lc_change c
LEFT JOIN lc_class f ON f.code = c.from_class
LEFT JOIN lc_class t ON t.code = c.to_class
LEFT JOIN lc_class n ON n.code = c.new_class;

-- One row per map year and class: the class's area with its name, title and colour.
CREATE VIEW lc_map_named AS
SELECT m.aoi, m.year, m.cog_path, m.model_id, m.footprint, m.created_at,
       k.code AS class_code, k.name AS class_name, k.title AS class_title, k.colour AS class_colour,
       (a.value)::double precision AS area_ha
FROM lc_map m
CROSS JOIN LATERAL jsonb_each_text(m.class_areas_ha) AS a (key, value)
JOIN lc_class k ON k.name = a.key;

COMMENT ON VIEW lc_change_named IS 'lc_change with the names, titles and colours of its classes (lc_class)';
COMMENT ON VIEW lc_map_named IS 'lc_map, one row per year and class: class name, title, colour and area (ha)';

COMMENT ON TABLE lc_class IS 'The land-cover classes of the maps (eo_tasks/core/classes.py)';
COMMENT ON COLUMN lc_class.code IS 'Pixel value in the map COGs (0 is no data and has no row)';
COMMENT ON COLUMN lc_class.name IS 'Machine name (STAC classification name, class_areas_ha keys)';
COMMENT ON COLUMN lc_class.title IS 'Name people read (GDAL category names, QGIS legends)';
COMMENT ON COLUMN lc_class.colour IS 'Display colour #rrggbb (COG colour table, QGIS style, STAC color_hint)';

COMMENT ON TABLE schema_migration IS 'SQL migrations applied to this schema (eo_tasks/store/migrations)';
COMMENT ON COLUMN schema_migration.version IS 'Migration file name without .sql';
COMMENT ON COLUMN schema_migration.applied_at IS 'When it was applied';

COMMENT ON TABLE scene IS 'Scene catalog: one row per satellite scene found by a provider, with its download state';
COMMENT ON COLUMN scene.id IS 'The provider''s item / product id';
COMMENT ON COLUMN scene.collection IS 'sentinel-2-l2a or landsat-c2-l2';
COMMENT ON COLUMN scene.platform IS 'Satellite, e.g. sentinel-2a, landsat-8';
COMMENT ON COLUMN scene.datetime IS 'Acquisition time (UTC)';
COMMENT ON COLUMN scene.cloud_cover IS 'Cloud cover reported by the provider (percent)';
COMMENT ON COLUMN scene.provider IS 'Provider it was found at';
COMMENT ON COLUMN scene.provider_id IS 'Id in the provider''s own API (DHuS uuid, STAC id)';
COMMENT ON COLUMN scene.footprint IS 'Scene outline, EPSG:4326';
COMMENT ON COLUMN scene.properties IS 'Provider metadata: processing baseline, offset flag, EPSG, tile';
COMMENT ON COLUMN scene.assets IS 'Band -> {href, checksum, size, local_path}';
COMMENT ON COLUMN scene.local_dir IS 'Folder of the downloaded files';
COMMENT ON COLUMN scene.checksum IS 'sha256 over the assets'' sha256s, once ready';
COMMENT ON COLUMN scene.state IS 'discovered, downloading, ready, used, failed or quarantined';
COMMENT ON COLUMN scene.reason IS 'Why it failed or was quarantined';
COMMENT ON COLUMN scene.attempts IS 'Download attempts so far';
COMMENT ON COLUMN scene.discovered_at IS 'When it was first found';
COMMENT ON COLUMN scene.updated_at IS 'Last state change';

COMMENT ON TABLE aoi_scene IS 'Which AOIs a scene serves';
COMMENT ON COLUMN aoi_scene.aoi IS 'AOI name';
COMMENT ON COLUMN aoi_scene.scene_id IS 'The scene (scene.id)';

COMMENT ON TABLE scene_skip IS 'Every decision to skip a scene for an AOI, with its reason';
COMMENT ON COLUMN scene_skip.aoi IS 'AOI name';
COMMENT ON COLUMN scene_skip.scene_id IS 'The skipped scene';
COMMENT ON COLUMN scene_skip.reason IS 'Why it was skipped';
COMMENT ON COLUMN scene_skip.skipped_at IS 'When';

COMMENT ON TABLE datacube IS 'One HDF5 datacube per AOI and year, and the scenes it was built from';
COMMENT ON COLUMN datacube.aoi IS 'AOI name';
COMMENT ON COLUMN datacube.year IS 'Year of the composites';
COMMENT ON COLUMN datacube.path IS 'HDF5 file';
COMMENT ON COLUMN datacube.scene_fingerprint IS 'Digest of the scene ids and files used (detects changed inputs)';
COMMENT ON COLUMN datacube.scenes IS 'Scene ids used';
COMMENT ON COLUMN datacube.skipped_scenes IS 'Scene id -> reason it was not used';
COMMENT ON COLUMN datacube.n_composites IS 'Composites (time steps) per year';
COMMENT ON COLUMN datacube.created_at IS 'When it was built';

COMMENT ON TABLE training_set IS 'Training sets built from a reference map and datacubes, one row per build';
COMMENT ON COLUMN training_set.id IS 'Build id';
COMMENT ON COLUMN training_set.aoi IS 'AOI name';
COMMENT ON COLUMN training_set.path IS 'HDF5 file';
COMMENT ON COLUMN training_set.sha256 IS 'sha256 of the file';
COMMENT ON COLUMN training_set.years IS 'Years sampled';
COMMENT ON COLUMN training_set.source_cubes IS 'Year -> {path, scene_fingerprint, created_at} of the cubes read';
COMMENT ON COLUMN training_set.reference IS 'Reference map it was labelled from';
COMMENT ON COLUMN training_set.legend IS 'Legend mapping the reference codes to platform classes';
COMMENT ON COLUMN training_set.n_samples IS 'Samples in the set';
COMMENT ON COLUMN training_set.samples_per_class IS 'Class name -> {year -> samples}';
COMMENT ON COLUMN training_set.config IS 'The training-set configuration used';
COMMENT ON COLUMN training_set.report IS 'Annual reports (RF accuracy, filter, maps) and the multi-year report';
COMMENT ON COLUMN training_set.created_at IS 'When it was built';

COMMENT ON TABLE model IS 'Trained models, one row per training run that produced one, with its model card';
COMMENT ON COLUMN model.id IS '<aoi>_<backend>_<architecture>_<UTC timestamp>';
COMMENT ON COLUMN model.aoi IS 'AOI name';
COMMENT ON COLUMN model.backend IS 'Training framework';
COMMENT ON COLUMN model.architecture IS 'Network architecture';
COMMENT ON COLUMN model.path IS 'Model directory (model file and model_card.json)';
COMMENT ON COLUMN model.training_set IS 'The training-set file it was trained on';
COMMENT ON COLUMN model.slurm_job_id IS 'SLURM job that trained it';
COMMENT ON COLUMN model.accuracy IS 'Overall accuracy on the test split';
COMMENT ON COLUMN model.card IS 'The model card';
COMMENT ON COLUMN model.created_at IS 'When it was registered';

COMMENT ON TABLE lc_map IS 'Yearly land-cover maps (one COG per AOI and year)';
COMMENT ON COLUMN lc_map.aoi IS 'AOI name';
COMMENT ON COLUMN lc_map.year IS 'Map year';
COMMENT ON COLUMN lc_map.cog_path IS 'The map COG (class codes: lc_class.code)';
COMMENT ON COLUMN lc_map.model_id IS 'The model it was predicted with';
COMMENT ON COLUMN lc_map.class_areas_ha IS 'Class name (lc_class.name) -> area in hectares';
COMMENT ON COLUMN lc_map.footprint IS 'The map''s outline, EPSG:4326';
COMMENT ON COLUMN lc_map.created_at IS 'When the year was (re)made';

COMMENT ON TABLE lc_change IS 'Permanent land-cover changes found in a map year: one valid MultiPolygon per connected region';
COMMENT ON COLUMN lc_change.id IS 'Change id';
COMMENT ON COLUMN lc_change.aoi IS 'AOI name';
COMMENT ON COLUMN lc_change.year IS 'The map year the change was detected in';
COMMENT ON COLUMN lc_change.geom IS 'Region, EPSG:4326, made valid on insert (trigger lc_change_valid_geom)';
COMMENT ON COLUMN lc_change.from_class IS 'Class before (lc_class.code), majority over the region';
COMMENT ON COLUMN lc_change.to_class IS 'Class after (lc_class.code), majority over the region';
COMMENT ON COLUMN lc_change.change_date IS 'Estimated change date (median over the region)';
COMMENT ON COLUMN lc_change.area_m2 IS 'Area in square metres (pixel count times pixel area)';
COMMENT ON COLUMN lc_change.status IS 'Review state: pending, approved or rejected';
COMMENT ON COLUMN lc_change.new_class IS 'A reviewer''s relabel of to_class (lc_class.code)';
COMMENT ON COLUMN lc_change.reviewed_by IS 'Who reviewed it';
COMMENT ON COLUMN lc_change.reviewed_at IS 'When';
