"""Worker processes started from inside an Airflow task.

Inside an Airflow 3 task, a process that ``multiprocessing`` spawns must not re-import the parent's
``__main__``: that is the ``airflow`` entry point, whose import parses a database URL the task
process is not given, so the child dies before it runs anything (DESIGN, *More checked facts*).
:func:`detached_main` hides the main module from spawn while the workers start; they only import
this library, which never imports Airflow (import-linter checks it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def detached_main() -> Iterator[None]:
    """While active, processes spawned by ``multiprocessing`` do not re-run the parent's ``__main__``.

    ``multiprocessing.spawn`` re-imports the main module in each child when it has a file or a
    spec; without both, the child starts from a clean interpreter and unpickles what it is given.
    """
    main = sys.modules["__main__"]
    spec, file = getattr(main, "__spec__", None), getattr(main, "__file__", None)
    main.__spec__ = None
    if file is not None:
        del main.__file__
    try:
        yield
    finally:
        main.__spec__ = spec
        if file is not None:
            main.__file__ = file
