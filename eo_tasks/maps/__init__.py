"""Stage 5, maps: inference, label-sequence analysis, yearly maps, changes, their files and review."""
