"""Spectral indices (NDVI, EVI, NDWI, NDSI, bare-soil index) from surface reflectance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

INDEX_NAMES = ("ndvi", "evi", "ndwi", "ndsi", "bsi")


def spectral_indices(
    reflectance: np.ndarray, band_names: Sequence[str], nir_band: str = "nir"
) -> dict[str, np.ndarray]:
    """The robust indices the training-set builder clusters on.

    NDVI (vegetation), EVI (vegetation, less saturated), NDWI (McFeeters: open water), NDSI (snow),
    BSI (bare soil index of Rikimaru et al.).

    Args:
        reflectance: ``(..., bands)`` surface reflectance.
        band_names: Names of the last axis (needs blue, green, red, nir or nir08, swir16).
        nir_band: The near-infrared band used where there is one of that name (else ``nir08``).
            ``nir08`` (Sentinel-2 B8A, Landsat OLI B5) is the one both sensors observe: in a
            composite only Landsat observed, a cube's ``nir`` (B08) is filled in time from the
            Sentinel-2 composites around it.

    Returns:
        Index name → array of shape ``reflectance.shape[:-1]``.
    """
    idx = {name: i for i, name in enumerate(band_names)}
    nir_key = nir_band if nir_band in idx else "nir08"
    blue, green, red, nir, swir = (
        reflectance[..., idx[name]].astype(np.float32) for name in ("blue", "green", "red", nir_key, "swir16")
    )

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = num / den
        return np.where(np.abs(den) > 1e-6, out, 0.0).astype(np.float32)

    return {
        "ndvi": ratio(nir - red, nir + red),
        "evi": np.clip(ratio(2.5 * (nir - red), nir + 6 * red - 7.5 * blue + 1), -1, 1),
        "ndwi": ratio(green - nir, green + nir),
        "ndsi": ratio(green - swir, green + swir),
        "bsi": ratio((swir + red) - (nir + blue), (swir + red) + (nir + blue)),
    }
