"""Training sets derived from a public reference map and the datacubes, with no hand-labelled samples.

Why: hand labels do not scale to every AOI and every year, while public land-cover products
(ESA WorldCover, CORINE) cover everything but are noisy, coarse at boundaries and out of date where
the land changed. The published method (Sedona et al., IGARSS 2022, IEEE GRSL 2023) turns such a
map into training data in two steps, which this package implements:

1. **Annual training set** (:func:`build_annual`): the reference map is warped onto the AOI grid and
   translated to platform classes (:func:`reference_on_grid`); per class, k-means on the year's
   time series of robust indices (NDVI, EVI, NDWI, NDSI, BSI) keeps the dominant cluster
   (:func:`fit_dominant_cluster`), which drops most mislabelled pixels (and, for classes with several
   genuine sub-types, the minor ones too: ``keep_cluster_share`` keeps clusters above a share of the
   class, see ``benchmarks/trainset/run.py`` for the measured trade-off); a stratified random sample
   follows the reference's class proportions within per-class bounds (:func:`class_quotas`,
   :func:`stratified_sample`); train / validation / test are whole, buffered blocks of the grid
   (:func:`block_splits`). A random forest trained on it labels the whole cube block by block
   (:func:`predict_map`): the year's preliminary map, a GeoTIFF plus a PNG quicklook.
2. **Multi-year training set** (:func:`build_multiyear`): pixels where every year's preliminary map
   agrees with the reference are taken as unchanged, and a stratified sample of them is drawn from
   every year's cube.

Files, under ``$EO_DATA_DIR/training/<aoi>/`` (:class:`TrainingPaths`): ``reference.tif``,
``rf_map_<year>.tif`` / ``.png``, ``annual_<year>.h5`` / ``.json``, ``trainset.h5``, ``report.json``.

Training-set HDF5 layout (contract; ``annual_<year>.h5`` and ``trainset.h5``, format version 1)
-------------------------------------------------------------------------------------------------
Datasets (N samples, T time steps = the calendar's composites of one year, F features):

- ``features`` (N, T, F) float32, gzip: per sample, the year's composite time series of the cube's
  bands (reflectance), followed by NDVI, EVI, NDWI, NDSI, BSI when ``include_indices`` is set;
  the names are in the ``feature_names`` attribute. Raw values: normalize with the statistics below.
- ``labels`` (N,) uint8: platform class codes (1..9, :data:`eo_tasks.core.classes.CLASSES`); one label per
  sample, valid at every time step (the pixels are unchanged over the years sampled).
- ``year`` (N,) int16: the year whose cube the sample comes from.
- ``row``, ``col`` (N,) int32: the pixel on the AOI grid (``geotransform``).
- ``split`` (N,) uint8: 0 train, 1 validation, 2 test. Rows are ordered by split (train, then
  validation, then test; shuffled within each): split ``s`` is the contiguous slice
  ``sum(split_counts[:s]) : sum(split_counts[:s+1])``.
- ``norm_mean``, ``norm_std`` (F,) float32: per-feature mean and standard deviation over the
  training split's samples and time steps (``std`` floored at 1e-6); use ``(x - mean) / std``.
- ``dates`` (Y, T) ISO date strings: the composite dates of each year in ``years`` (the calendar is the
  same day-of-year windows every year, so time step t is the same season in every year).

Attributes: ``format`` ("eo-platform/training-set"), ``format_version`` (1), ``aoi``, ``epsg``,
``crs_wkt``, ``geotransform``, ``grid_shape``, ``years``, ``band_names``, ``feature_names``,
``class_codes`` / ``class_names`` / ``class_colors`` (all platform classes: a model's output layer),
``split_names``, ``split_counts``, ``source_cubes`` (JSON: year → path, scene fingerprint, created_at),
``reference``, ``legend``, ``config`` (JSON: the :class:`TrainsetConfig`), ``extra`` (JSON; the
multi-year set records ``unchanged_pixels`` per class), ``created_at``.

Read it with :func:`read_training_set`, or with h5py alone (the compute environment needs nothing
else): ``x = (f["features"][a:b] - f["norm_mean"][:]) / f["norm_std"][:]``.
"""

from eo_tasks.core.features import feature_names, index_series, pixel_features
from eo_tasks.core.trainset_format import SPLIT_NAMES
from eo_tasks.trainset.annual import AnnualResult, build_annual, cluster_filter
from eo_tasks.trainset.config import TrainsetConfig
from eo_tasks.trainset.dataset import (
    EmptyTrainingSetError,
    Samples,
    TrainingSetMetadata,
    read_training_set,
    write_training_set,
)
from eo_tasks.trainset.forest import accuracy_report, predict_map, train_forest
from eo_tasks.trainset.multiyear import build_multiyear, unchanged_pixels
from eo_tasks.trainset.pipeline import TrainingPaths, prepare_reference
from eo_tasks.trainset.reference import reference_on_grid, write_class_raster
from eo_tasks.trainset.sampling import (
    DominantCluster,
    block_splits,
    class_quotas,
    fit_dominant_cluster,
    stratified_sample,
)

__all__ = [
    "SPLIT_NAMES",
    "AnnualResult",
    "DominantCluster",
    "EmptyTrainingSetError",
    "Samples",
    "TrainingPaths",
    "TrainingSetMetadata",
    "TrainsetConfig",
    "accuracy_report",
    "block_splits",
    "build_annual",
    "build_multiyear",
    "class_quotas",
    "cluster_filter",
    "feature_names",
    "fit_dominant_cluster",
    "index_series",
    "pixel_features",
    "predict_map",
    "prepare_reference",
    "read_training_set",
    "reference_on_grid",
    "stratified_sample",
    "train_forest",
    "unchanged_pixels",
    "write_class_raster",
    "write_training_set",
]
