-- The scene catalog: one row per scene, linked to the AOIs it serves.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE scene (
    id            text PRIMARY KEY,                 -- the provider's item / product id
    collection    text NOT NULL CHECK (collection IN ('sentinel-2-l2a', 'landsat-c2-l2')),
    platform      text NOT NULL,
    datetime      timestamptz NOT NULL,
    cloud_cover   real,
    provider      text NOT NULL,
    provider_id   text NOT NULL,                    -- id in the provider's own API (DHuS uuid, STAC id)
    footprint     geometry(MultiPolygon, 4326) NOT NULL,
    properties    jsonb NOT NULL DEFAULT '{}',      -- processing baseline, offset flag, EPSG, tile...
    assets        jsonb NOT NULL DEFAULT '{}',      -- band -> {href, checksum, size, local_path}
    local_dir     text,
    checksum      text,                             -- sha256 over the assets' sha256s, once ready
    state         text NOT NULL DEFAULT 'discovered'
                  CHECK (state IN ('discovered', 'downloading', 'ready', 'used', 'failed', 'quarantined')),
    reason        text,
    attempts      integer NOT NULL DEFAULT 0,
    discovered_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scene_footprint_idx ON scene USING gist (footprint);
CREATE INDEX scene_state_idx ON scene (state);

CREATE TABLE aoi_scene (
    aoi      text NOT NULL,
    scene_id text NOT NULL REFERENCES scene (id) ON DELETE CASCADE,
    PRIMARY KEY (aoi, scene_id)
);

-- Every skip decision is kept, so "why was this scene not used?" has an answer.
CREATE TABLE scene_skip (
    aoi      text NOT NULL,
    scene_id text NOT NULL,
    reason   text NOT NULL,
    skipped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aoi, scene_id)
);
