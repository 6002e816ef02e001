"""gunicorn settings of the web process (the Procfile and ``bench/web.py`` use them):
``gunicorn -c python:web.gunicorn_conf 'web:create_app()'``.

Each worker loads the model before it takes a request, then moves everything it holds
by then (Flask, Jinja, scikit-learn, the model) out of the garbage collector's sight
with :func:`gc.freeze`. Without that, every full collection walked those ~100,000
long-lived objects again: under ``bench/web.py`` a full collection stopped a worker
for 20-95 ms several times a run, and every request queued behind it waited too.
"""

from __future__ import annotations

import gc


def post_worker_init(worker) -> None:
    from web import warm_up

    model = warm_up(worker.wsgi)
    gc.freeze()
    worker.log.info(
        "paperfeed worker ready: model %s, %d objects frozen out of the garbage collector",
        model or "(none yet)",
        gc.get_freeze_count(),
    )
