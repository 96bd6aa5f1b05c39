"""The PostGIS store: the one database layer, and the only place SQL lives.

:mod:`.connection` connects and applies the numbered migrations (package data);
:mod:`.scenes` is the scene catalog (and the cubes and models made from the scenes);
:mod:`.trainsets` the training sets; :mod:`.maps` the ``lc_map`` and ``lc_change`` rows of yearly
maps and changes; :mod:`.review` what the review page reads and a review writes.
"""
