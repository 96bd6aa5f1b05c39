-- Yearly land-cover maps and the permanent-change polygons found in them (the published contract).
CREATE TABLE lc_map (
    aoi            text NOT NULL,
    year           integer NOT NULL,
    cog_path       text NOT NULL,
    model_id       text REFERENCES model (id),
    class_areas_ha jsonb NOT NULL,                   -- class name -> hectares
    footprint      geometry(Polygon, 4326) NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aoi, year)
);

CREATE TABLE lc_change (
    id          bigserial PRIMARY KEY,
    aoi         text NOT NULL,
    year        integer NOT NULL,                    -- the map year the change was detected in
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    from_class  integer NOT NULL,
    to_class    integer NOT NULL,
    change_date date NOT NULL,
    area_m2     double precision NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    new_class   integer,                             -- a reviewer's relabel of to_class
    reviewed_by text,
    reviewed_at timestamptz,
    FOREIGN KEY (aoi, year) REFERENCES lc_map (aoi, year) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX lc_change_geom_idx ON lc_change USING gist (geom);
CREATE INDEX lc_change_aoi_year_idx ON lc_change (aoi, year, status);
