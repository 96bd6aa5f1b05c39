"""Shared contracts and helpers that every stage uses, and nothing stage-specific.

The AOI configuration (:mod:`.aoi`, one YAML file per area) and the grid it defines (:mod:`.grid`);
the platform's classes and reference legends (:mod:`.classes`); the datacube layout and its reader
(:mod:`.cube`), the compositing calendar (:mod:`.calendar`), spectral indices and per-pixel model
features (:mod:`.indices`, :mod:`.features`); what a scene is before and after download
(:mod:`.scenes`); the one error hierarchy (:mod:`.errors`); atomic file writes and hashing
(:mod:`.files`), raster helpers (:mod:`.raster`), PNG quicklooks (:mod:`.quicklook`) and the
deployment settings (:mod:`.settings`). Every other package may import ``core``; ``core`` imports
none of them.
"""
