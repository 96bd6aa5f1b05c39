"""The change-review UI: a FastAPI app that Airflow's api-server mounts (see ``eo_review_plugin.py``).

A package of its own so its modules, templates, static files and npm libraries stay together;
``plugins/.airflowignore`` keeps Airflow's plugin loader from importing its files one by one.
"""
