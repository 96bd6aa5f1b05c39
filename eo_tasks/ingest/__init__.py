"""Stage 1, ingest: discover an AOI's scenes at its providers and download them verified."""
