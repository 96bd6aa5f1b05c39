"""Stage 4, training: the HPC-side trainer (``python -m eo_tasks.training``) for both backends."""
