"""Blocks of a refit's searches on several cores, each block computed as on one.

A neighbour search or the kNN bridge works a block of rows at a time: one matrix product,
then ``np.argpartition`` over each row, and the block's rows of the output are written.
Blocks are independent, and numpy's and scipy's loops and BLAS release the GIL, so
:func:`map_blocks` hands them to a few threads, each block's BLAS on one thread. A
block's similarities are then the same floats as in one thread (OpenBLAS's threads
share out a product's rows and columns, never the terms of one sum: checked, and
``tests/test_content.py`` compares), and so are the neighbours kept. LAPACK's Cholesky
factorisation, by contrast, gives other factors on two threads (its updates are summed
in another order), so the ridges' factorisation is :func:`cholesky`: blocks fixed by the
matrix's size alone, each one's BLAS on one thread, the same factor on any count.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

#: The default thread count of a refit's searches: the cores this process may use, at
#: most this many (each thread holds a block of similarities: memory grows with them).
MAX_DEFAULT_THREADS = 4

#: Rows of :func:`cholesky`'s blocks: large enough for BLAS to run near its peak on each,
#: small enough for two or more threads to share a factorisation of a few thousand rows
#: (at 10,670 rows: 1.64 s on two threads with 256 to 512, 1.79 s with 768).
CHOLESKY_BLOCK = 512


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


def cholesky(a: np.ndarray, threads: int, block: int | None = None) -> np.ndarray:
    """The lower Cholesky factor ``L`` (``a = L L^T``) of a symmetric positive definite
    C-ordered ``a``, written over ``a``'s lower triangle (its strict upper triangle is
    left as it was: read only the lower one); returns ``a``.

    A left-looking factorisation by blocks of ``block`` columns (default
    :data:`CHOLESKY_BLOCK`; :func:`row_blocks`): a
    block column is updated by the factor's columns left of it (one product per block of
    rows: memory traffic of the block column's size, not the trailing matrix's), its
    diagonal block factored by LAPACK and the blocks below solved against it; the blocks
    of rows run in ``threads`` threads (:func:`map_blocks`). The blocks depend on ``a``'s
    size alone and each one's BLAS runs on one thread, so the factor is the same, bit for
    bit, on any thread count, where LAPACK's own factorisation gives other floats on two.
    At 10,670 rows: 1.6 s on two threads, 2.7 s on one, LAPACK's 2.1 s on one.
    Raises :class:`numpy.linalg.LinAlgError` when ``a`` is not positive definite.
    """
    from scipy.linalg import cholesky as dense_cholesky
    from scipy.linalg import solve_triangular

    blocks = row_blocks(len(a), block or CHOLESKY_BLOCK)
    for k, (s, e) in enumerate(blocks):
        if s:
            a[s:e, s:e] -= a[s:e, :s] @ a[s:e, :s].T
        a[s:e, s:e] = dense_cholesky(a[s:e, s:e], lower=True, check_finite=False)
        diagonal = a[s:e, s:e]

        def column(i: int, j: int, scratch: dict, s=s, e=e, diagonal=diagonal) -> None:
            # rows i:j of block column s:e: the columns left of it, then X L_kk^T = A
            if s:
                a[i:j, s:e] -= a[i:j, :s] @ a[s:e, :s].T
            a[i:j, s:e] = solve_triangular(
                diagonal, a[i:j, s:e].T, lower=True, check_finite=False
            ).T

        map_blocks(column, blocks[k + 1 :], threads)
    return a
