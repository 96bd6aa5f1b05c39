"""Stage 2, preprocess: ready scenes to one HDF5 datacube per AOI and year, on Dask.

:mod:`.scene_prep` scales reflectance, masks clouds, shadows and snow (SCL, QA_PIXEL) and warps each
band onto the AOI grid with GDAL; :mod:`.harmonize` adjusts Landsat OLI to Sentinel-2 MSI;
:mod:`.composite` makes the fixed calendar's composites and fills gaps; :mod:`.datacube` builds
the cube block by block on the Dask cluster of :mod:`.cluster` and writes it atomically.
"""
