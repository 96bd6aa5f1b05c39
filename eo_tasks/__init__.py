"""eo_tasks: the land-cover platform's processing library.

Plain Python, no Airflow imports: every stage (catalog, preprocess, datacube, trainset, models,
train, infer, changes, store, hpc) is a module of small typed functions that the DAGs in
``dags/`` wire together and that the tests exercise on small arrays.
"""

__version__ = "0.1.0"
