"""The PostGIS store: one database layer for scenes, cubes, training sets, models and maps."""
