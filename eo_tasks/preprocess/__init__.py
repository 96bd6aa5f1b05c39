"""Stage 2, preprocess: scenes to HDF5 datacubes (masks, warping, harmonization, composites)."""
