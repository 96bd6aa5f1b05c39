"""Landsat-8 OLI → Sentinel-2 MSI spectral harmonization (band-pass adjustment).

The coefficients are NASA's Harmonized Landsat Sentinel-2 (HLS) band-pass adjustments, HLS User
Guide v1.4, Table 5 ("OLI-like" adjustment of Sentinel-2A MSI; Claverie et al. 2018, Remote Sensing
of Environment 219, 145-161): ρ_OLI = slope · ρ_MSI + offset. Here they are inverted to bring OLI
reflectance onto the MSI scale: ρ_MSI = (ρ_OLI − offset) / slope.
"""

from __future__ import annotations

import numpy as np

# platform band -> (slope, offset) of ρ_OLI = slope · ρ_MSI + offset (HLS v1.4, Sentinel-2A).
HLS_MSI_TO_OLI: dict[str, tuple[float, float]] = {
    "blue": (0.9778, -0.004),  # MSI B02 / OLI B2
    "green": (1.0053, -0.0009),  # MSI B03 / OLI B3
    "red": (0.9765, 0.0009),  # MSI B04 / OLI B4
    "nir08": (0.9983, -0.0001),  # MSI B8A / OLI B5
    "swir16": (0.9987, -0.0011),  # MSI B11 / OLI B6
    "swir22": (1.003, -0.0012),  # MSI B12 / OLI B7
}


def oli_to_msi(reflectance: np.ndarray, band: str) -> np.ndarray:
    """Brings Landsat-8 OLI surface reflectance of ``band`` onto the Sentinel-2 MSI scale."""
    slope, offset = HLS_MSI_TO_OLI[band]
    return ((reflectance - offset) / slope).astype(np.float32)


def msi_to_oli(reflectance: np.ndarray, band: str) -> np.ndarray:
    """The inverse: what OLI would measure over a surface MSI sees as ``reflectance``."""
    slope, offset = HLS_MSI_TO_OLI[band]
    return (slope * reflectance + offset).astype(np.float32)
