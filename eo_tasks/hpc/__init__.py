"""The HPC side of the platform: SLURM over SSH, and the job templates.

:mod:`.slurm` renders the Jinja2 job scripts in ``templates/`` (package data: an installed package
finds them), submits them with ``sbatch`` over SSH, and follows jobs and job arrays to their end.
"""
