"""Blocks of a refit's searches on several cores, each block computed as on one.

A neighbour search or the kNN bridge works a block of rows at a time: one matrix product,
then ``np.argpartition`` over each row, and the block's rows of the output are written.
Blocks are independent, and numpy's and scipy's loops and BLAS release the GIL, so
:func:`map_blocks` hands them to a few threads, each block's BLAS on one thread. A
block's similarities are then the same floats as in one thread (OpenBLAS's threads
share out a product's rows and columns, never the terms of one sum: checked, and
``tests/test_content.py`` compares), and so are the neighbours kept. LAPACK's Cholesky
factorisation, by contrast, gives other factors on two threads (its updates are summed
in another order), so the ridges stay on one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits

#: The default thread count of a refit's searches: the cores this process may use, at
#: most this many (each thread holds a block of similarities: memory grows with them).
MAX_DEFAULT_THREADS = 4


def default_threads() -> int:
    """The cores this process may run on (its CPU affinity), at most
    :data:`MAX_DEFAULT_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


def row_blocks(n: int, size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of blocks of ``size`` rows over ``n`` rows; a last block of one
    row joins the one before. BLAS computes a product with one row (a matrix-vector
    product) in another order than one with several, so without it a row's floats
    would depend on where the blocks fall; with it they do not."""
    size = max(int(size), 2)
    starts = list(range(0, n, size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, [*starts[1:], n], strict=False))


def map_blocks(
    work: Callable[[int, int, dict], None], blocks: Iterable[tuple[int, int]], threads: int
) -> None:
    """Call ``work(start, stop, scratch)`` for every block of :func:`row_blocks`, from
    ``threads`` threads.

    ``work`` computes one block and writes its own rows of the output (blocks must not
    share rows); ``scratch`` is a dict private to the calling thread, for buffers reused
    from one block to the next. With one thread the blocks run here, BLAS as the process
    has it (a request's search pays nothing: setting BLAS's threads costs ~1 ms); with
    more, BLAS runs on one thread inside every block. The first error raised by a block
    is raised here, once the blocks already running have finished.
    """
    blocks = list(blocks)
    threads = max(1, min(int(threads), len(blocks)))
    if threads == 1:
        scratch: dict = {}
        for start, stop in blocks:
            work(start, stop, scratch)
        return
    with threadpool_limits(limits=1, user_api="blas"):
        local = threading.local()

        def run(start: int, stop: int) -> None:
            if not hasattr(local, "scratch"):
                local.scratch = {}
            work(start, stop, local.scratch)

        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="paperfeed-block")
        try:
            futures = [pool.submit(run, start, stop) for start, stop in blocks]
            for future in futures:
                future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
