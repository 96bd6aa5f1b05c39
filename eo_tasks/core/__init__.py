"""Shared contracts and helpers every stage uses: AOI configuration, grids, classes, errors, files."""
