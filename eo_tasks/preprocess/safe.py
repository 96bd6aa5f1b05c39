"""Sentinel-2 L2A SAFE products (DHuS / sentinelsat) as band files, ready for the COG path.

A DHuS scene is one zip holding ``S2*_MSIL2A_*.SAFE/``. It is unpacked once, next to the zip,
with every member checked to stay inside the product folder (no absolute names, no ``..``, no
links); then ``MTD_MSIL2A.xml`` names the granule's image files (``IMAGE_FILE``, JP2 read by GDAL)
and gives the BOA offset (``BOA_ADD_OFFSET`` per band, DN) and the processing baseline. The
result is a :class:`~eo_tasks.core.scenes.SceneInput` with one file per platform band, which
the same preprocessing as COG scenes reads (10 m bands from ``R10m``, the others and SCL from
``R20m``).
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

from eo_tasks.core.errors import EOError
from eo_tasks.core.scenes import SceneInput

# Platform band -> (SAFE band id, resolution folder) and the MTD band_id of BOA_ADD_OFFSET.
SAFE_BANDS = {
    "blue": ("B02", 10),
    "green": ("B03", 10),
    "red": ("B04", 10),
    "nir": ("B08", 10),
    "rededge1": ("B05", 20),
    "rededge2": ("B06", 20),
    "rededge3": ("B07", 20),
    "nir08": ("B8A", 20),
    "swir16": ("B11", 20),
    "swir22": ("B12", 20),
    "scl": ("SCL", 20),
}
_OFFSET_BAND_ID = {
    "B01": 0, "B02": 1, "B03": 2, "B04": 3, "B05": 4, "B06": 5, "B07": 6,
    "B08": 7, "B8A": 8, "B09": 9, "B10": 10, "B11": 11, "B12": 12,
}  # fmt: skip
_MAX_MEMBERS = 10_000


class SafeProductError(EOError, ValueError):
    """A SAFE product is unsafe to unpack, incomplete, or its metadata cannot be read."""


def _checked_member(info: zipfile.ZipInfo) -> PurePosixPath:
    name = PurePosixPath(info.filename)
    mode = info.external_attr >> 16
    if name.is_absolute() or ".." in name.parts or "\\" in info.filename or ":" in info.filename:
        raise SafeProductError(f"zip member {info.filename[:120]!r} points outside the product folder")
    if stat.S_ISLNK(mode):
        raise SafeProductError(f"zip member {info.filename[:120]!r} is a link")
    return name


def extract_safe(zip_path: Path, dest: Path) -> Path:
    """Unpacks a SAFE zip into ``dest`` (once; atomically) and returns the ``.SAFE`` folder.

    Raises:
        SafeProductError: A member would land outside ``dest``, is a link, or no ``.SAFE`` is inside.
    """
    if not dest.exists():
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with zipfile.ZipFile(zip_path) as archive:
                members = archive.infolist()
                if len(members) > _MAX_MEMBERS:
                    raise SafeProductError(f"{zip_path.name}: {len(members)} members, more than a SAFE has")
                root = tmp.resolve()
                for info in members:
                    name = _checked_member(info)
                    target = (tmp / name).resolve()
                    if root not in target.parents and target != root:
                        raise SafeProductError(f"zip member {info.filename[:120]!r} escapes the folder")
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(tmp, dest)
        except (zipfile.BadZipFile, OSError) as err:
            raise SafeProductError(f"{zip_path.name}: cannot unpack: {err}") from err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    products = sorted(dest.glob("*.SAFE"))
    if len(products) != 1:
        raise SafeProductError(f"{zip_path.name}: expected one .SAFE folder, found {len(products)}")
    return products[0]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_metadata(safe_dir: Path) -> tuple[dict[str, Path], dict[str, object]]:
    """Band files and reflectance metadata of an unpacked L2A product, from ``MTD_MSIL2A.xml``.

    Returns:
        ``(files, properties)``: platform band -> JP2 path; ``s2:processing_baseline`` and
        ``s2:boa_add_offset`` (DN, the offset common to the bands used).

    Raises:
        SafeProductError: No metadata, a band's file missing or outside the product, or bands
            with different offsets.
    """
    mtd = safe_dir / "MTD_MSIL2A.xml"
    try:
        tree = ET.parse(mtd)
    except (OSError, ET.ParseError) as err:
        raise SafeProductError(f"{safe_dir.name}: cannot read MTD_MSIL2A.xml: {err}") from err
    images: dict[tuple[str, int], str] = {}
    offsets: dict[int, float] = {}
    baseline = None
    for element in tree.iter():
        tag, text = _local(element.tag), (element.text or "").strip()
        if tag == "IMAGE_FILE":
            stem = PurePosixPath(text).name
            parts = stem.rsplit("_", 2)
            if len(parts) == 3 and parts[2].endswith("m") and parts[2][:-1].isdigit():
                images[(parts[1], int(parts[2][:-1]))] = text
        elif tag == "BOA_ADD_OFFSET":
            offsets[int(element.attrib["band_id"])] = float(text)
        elif tag == "PROCESSING_BASELINE":
            baseline = text
    root = safe_dir.resolve()
    files: dict[str, Path] = {}
    for band, key in SAFE_BANDS.items():
        relative = images.get(key)
        if relative is None:
            raise SafeProductError(f"{safe_dir.name}: MTD_MSIL2A.xml lists no {key[0]} at {key[1]} m")
        path = (safe_dir / f"{relative}.jp2").resolve()
        if root not in path.parents or not path.is_file():
            raise SafeProductError(f"{safe_dir.name}: {relative}.jp2 is missing or outside the product")
        files[band] = path
    used = {offsets.get(_OFFSET_BAND_ID[k[0]], 0.0) for b, k in SAFE_BANDS.items() if b != "scl"}
    if len(used) != 1:
        raise SafeProductError(f"{safe_dir.name}: bands have different BOA_ADD_OFFSET values {sorted(used)}")
    properties: dict[str, object] = {"s2:processing_baseline": baseline, "s2:boa_add_offset": used.pop()}
    return files, properties


@functools.lru_cache(maxsize=256)
def _unpacked(zip_path: str) -> tuple[dict[str, Path], dict[str, object]]:
    path = Path(zip_path)
    safe_dir = extract_safe(path, path.with_name(path.stem + ".unpacked"))
    return read_metadata(safe_dir)


def as_band_files(scene: SceneInput) -> SceneInput:
    """A SAFE scene (one ``product`` zip) as band files; any other scene unchanged.

    Raises:
        SafeProductError: The product cannot be unpacked or read.
    """
    product = scene.files.get("product")
    if product is None or scene.collection != "sentinel-2-l2a":
        return scene
    files, properties = _unpacked(str(product))
    merged = {**scene.properties, **properties}
    merged.pop("earthsearch:boa_offset_applied", None)  # the SAFE's own metadata decides
    return replace(scene, files={b: str(p) for b, p in files.items()}, properties=merged)
