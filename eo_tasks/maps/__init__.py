"""Stage 5, maps: from a model and two years of cubes to a consistent yearly map and dated changes.

:mod:`.infer` is the inference job array on the HPC (sliding windows → one label per window);
:mod:`.changes` is the label-sequence analysis (permanent changes, their dates); :mod:`.dating`
dates each change region on its spectra and checks that it lasts; :mod:`.spectral_changes` finds
the lasting changes the labels miss; :mod:`.annual_maps` makes the year's map from the previous
one; :mod:`.outputs` writes the COGs, :mod:`.stac` the STAC items; :mod:`.pipeline` is what the
``maps_<aoi>`` DAG calls; :mod:`.review` applies a reviewer's decision; :mod:`.evaluate` scores maps
and changes against truth.
"""
