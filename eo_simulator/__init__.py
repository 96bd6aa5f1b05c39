"""A scene simulator: a synthetic but realistic Sentinel-2 / Landsat-8 archive with known truth.

Why: every stage of the platform (ingest, cloud masking, warping, L8→S2 harmonization,
compositing, training sets from a noisy reference map, change detection) needs input data whose
right answer is known, small enough for unit tests and fast enough for a demo, without
downloading gigabytes or holding credentials. The simulator writes exactly what the local archive
contract describes (a static STAC catalog of COGs with Earth Search v1 conventions), plus the
truth: land cover per year, the planted changes and their dates, where the clouds were, and
which reference labels are wrong.

Modules: ``config`` (the scenario), ``spectra`` (bands, end-members, phenology), ``grid``
(grids and CRS), ``landscapes`` (the tables of the five landscapes), ``landscape`` (terrain and
layout), ``events`` (planted changes and truth), ``processes`` (the registry of change kinds),
``lookalikes`` (seasonal look-alikes), ``records`` (changes.json), ``reference`` (reference map),
``sensors`` (clouds and product encodings), ``archive`` (writing it all). Landsat-8 sees the
ground through the HLS band-pass table of ``eo_tasks.preprocess.harmonize``, the one preprocessing inverts.
"""

from eo_simulator.archive import SimulationResult, simulate
from eo_simulator.config import ScenarioConfig

__all__ = ["ScenarioConfig", "SimulationResult", "simulate"]
