"""Stage 1, ingest: discover an AOI's new scenes at its providers and download them verified.

Providers (:mod:`.providers`: a local STAC archive, STAC APIs such as Earth Search, Planetary
Computer and CDSE, and DHuS hubs through sentinelsat) turn search results into
:class:`~eo_tasks.core.scenes.SceneRecord`; :mod:`.download` fetches files resumably and checks
them; :mod:`.pipeline` is what the ``ingest_<aoi>`` DAG calls: discover, then download each scene.
"""
