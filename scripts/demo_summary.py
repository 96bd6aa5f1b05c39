"""The end of `make demo`: what the yearly maps hold, what was found vs the truth, where to look.

Usage: ``demo_summary.py AOI EVALUATION_TXT`` (the text `eo-tasks evaluate` printed); reads PostGIS
through the ``eo_postgis`` Airflow connection.
"""

from __future__ import annotations

import os
import sys
from contextlib import closing
from pathlib import Path

from airflow.models.connection import Connection

from eo_tasks.core.classes import CLASSES
from eo_tasks.maps.outputs import MapPaths
from eo_tasks.store.connection import connect
from eo_tasks.store.maps import change_summaries, map_summaries


def main(aoi: str, evaluation: str) -> None:
    """Prints the summary."""
    data = Path(os.environ["EO_DATA_DIR"])
    with closing(connect(Connection.get_connection_from_secrets("eo_postgis"))) as conn:
        maps = map_summaries(conn, aoi)
        changes = change_summaries(conn, aoi)
    print(f"\nYearly land-cover maps of {aoi} (class areas in ha; model {maps[-1][2]}):")
    print("  year " + "".join(f"{c.name[:10]:>11}" for c in CLASSES))
    for year, areas, _ in maps:
        print(f"  {year} " + "".join(f"{areas[c.name]:11.1f}" for c in CLASSES))
    print("\nPermanent changes found (pending review):")
    for year, _, _ in maps:
        n, ha, first, last = changes.get(year, (0, 0, None, None))
        print(f"  {year}: {n} polygons, {ha} ha" + (f", dated {first} .. {last}" if n else ""))
    print("\nAgainst the simulator's truth (eo-tasks evaluate):")
    print("  " + evaluation.strip().replace("\n", "\n  "))
    print("\nPictures and files:")
    for year, _, _ in maps:
        paths = MapPaths.for_year(data, aoi, year)
        print(f"  {year}: {paths.classes_png}  {paths.changes_png}")
    print(f"  STAC catalog of the outputs: {data / 'maps' / aoi / 'catalog.json'}")
    print(f"  random-forest maps: {data / 'training' / aoi}/rf_map_*.png")
    port = os.environ["EO_AIRFLOW_PORT"]
    print(
        f"\nReview the changes: http://127.0.0.1:{port}/eo-review/aoi/{aoi}  (Airflow: http://127.0.0.1:{port}/)"
    )


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]).read_text())
