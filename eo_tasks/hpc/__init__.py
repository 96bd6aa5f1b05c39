"""The HPC side of the platform: SLURM over SSH and the job templates (package data)."""
