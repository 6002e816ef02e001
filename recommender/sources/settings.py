"""The sources' settings, from the environment (each documented in the README)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import ConfigError
from ..config import env_number as _env_number

SOURCES = ("hf-daily", "arxiv")


def _names(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    raw = env.get(name)
    raw = default if raw is None else raw
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class SourceSettings:
    hf_api_url: str
    arxiv_api_url: str
    arxiv_categories: tuple[str, ...]
    arxiv_delay: float
    arxiv_page_size: int
    arxiv_max_results: int
    fetch_sources: tuple[str, ...]
    fetch_hour: int
    fetch_days: int
    timeout: float
    retries: int
    backoff: float
    max_wait: float
    max_bytes: int


def load_source_settings(environ: Mapping[str, str] | None = None) -> SourceSettings:
    """Read and check every ``PAPERFEED_*`` setting of the sources from ``environ``
    (default: the process's environment); :class:`ConfigError` if bad. Part of
    :func:`recommender.config.load_settings` (``Settings.sources``)."""
    env = os.environ if environ is None else environ

    def _number(name, default, low, high):
        return _env_number(name, default, low, high, env)

    sources = _names(env, "PAPERFEED_FETCH_SOURCES", "hf-daily")
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ConfigError(
            f"PAPERFEED_FETCH_SOURCES: unknown source {unknown[0]!r}; use {', '.join(SOURCES)}"
        )
    return SourceSettings(
        hf_api_url=(env.get("PAPERFEED_HF_API_URL") or "https://huggingface.co").rstrip("/"),
        arxiv_api_url=(env.get("PAPERFEED_ARXIV_API_URL") or "http://export.arxiv.org").rstrip("/"),
        arxiv_categories=(
            _names(env, "PAPERFEED_ARXIV_CATEGORIES", "cs.LG,cs.CL,cs.AI") or ("cs.LG",)
        ),
        arxiv_delay=_number("PAPERFEED_ARXIV_DELAY", 3.0, 0, 60),
        arxiv_page_size=int(_number("PAPERFEED_ARXIV_PAGE_SIZE", 200, 1, 2000)),
        arxiv_max_results=int(_number("PAPERFEED_ARXIV_MAX_RESULTS", 2000, 1, 30000)),
        fetch_sources=sources,
        fetch_hour=int(_number("PAPERFEED_FETCH_HOUR", 6, 0, 23)),
        fetch_days=int(_number("PAPERFEED_FETCH_DAYS", 3, 1, 30)),
        timeout=_number("PAPERFEED_FETCH_TIMEOUT", 30.0, 0.01, 600),
        retries=int(_number("PAPERFEED_FETCH_RETRIES", 4, 0, 10)),
        backoff=_number("PAPERFEED_FETCH_BACKOFF", 2.0, 0, 600),
        max_wait=_number("PAPERFEED_FETCH_MAX_WAIT", 120.0, 0, 3600),
        max_bytes=int(_number("PAPERFEED_FETCH_MAX_MB", 50, 0.001, 4096) * 2**20),
    )
