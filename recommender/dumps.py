"""Parse dump files into papers.

Three formats come in:

* **Daily Papers text dumps**: text scraped from the Hugging Face "Daily Papers"
  page. Page boilerplate first, then each paper as a title line followed by an
  abstract line, with or without blank lines between them.
* **JSON Lines**: one ``{"title": ..., "abstract": ...}`` object per line, with
  optional ``id``, ``url``, ``authors`` and ``published``.
* **arXiv API Atom XML**: ``<feed><entry>...</entry></feed>``.

This module is pure: bytes in, :class:`ParsedPaper` tuples out. Anything it
cannot make sense of raises :class:`DumpError`, which names the file and the
line so a person can fix the input.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

__all__ = [
    "DumpError",
    "NearTitles",
    "ParsedDump",
    "ParsedPaper",
    "detect_format",
    "normalise_title",
    "parse_dump",
    "parse_dump_file",
    "strip_unrenderable",
]

# A title longer than this is not a title: it is an abstract in the wrong place.
MAX_TITLE_CHARS = 600
# Lines before the first paper longer than this are content, not page chrome,
# and are never skipped silently.
MAX_BOILERPLATE_CHARS = 120
# A source id longer than this is not an id (a 5,000-digit "id" is a broken export).
MAX_ID_CHARS = 200
#: The largest dump file read (a 50,000-paper dump is about 60 MB); checked before reading.
MAX_DUMP_BYTES = 256 * 2**20

# Page chrome seen on the Daily Papers page. The parser does not depend on this
# list (unknown chrome before the first paper is recognised by its shape), but
# known lines are also dropped wherever they appear, and at the end of a file.
KNOWN_BOILERPLATE = {
    "get trending papers in your email inbox once a day!",
    "get trending papers in your email inbox!",
    "subscribe",
    "daily papers",
    "by ak and the research community",
    "new",
    "submit",
    "submit a paper",
    "search",
    "trending papers",
    "previous",
    "next",
    "load more",
    "show more",
    "upvote",
    "papers",
}


class DumpError(ValueError):
    """A dump that cannot be parsed. ``str()`` names the file and the line."""

    def __init__(self, message: str, *, source: str = "<dump>", line: int | None = None):
        self.message = message
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class ParsedPaper:
    """One paper as read from a dump."""

    title: str
    abstract: str
    external_id: str | None = None
    url: str | None = None
    authors: tuple[str, ...] = ()
    published: str | None = None
    line: int = 0
    norm_title: str = field(default="", compare=False)
    # Set by the fetched sources (recommender.sources), not by dump files.
    upvotes: int | None = None
    hf_url: str | None = None
    ai_summary: str | None = None  # the source's one-line TL;DR (Hugging Face)
    thumbnail: str | None = None  # the source's thumbnail image (an https URL)

    def __post_init__(self) -> None:
        if not self.norm_title:
            object.__setattr__(self, "norm_title", normalise_title(self.title))


@dataclass(frozen=True)
class ParsedDump:
    """A whole dump: its papers in page order, de-duplicated within the dump."""

    source: str
    format: str
    content_hash: str
    papers: tuple[ParsedPaper, ...]
    duplicates_in_dump: int = 0
    skipped_lines: tuple[str, ...] = field(default=())
    #: ``file:line: what`` for lines that were skipped but look like content (a title
    #: with no abstract), so a person can check the dump; known page chrome is silent.
    warnings: tuple[str, ...] = field(default=())


_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise_title(title: str) -> str:
    """Identity key of a title: NFKC, case-folded, punctuation and spacing removed.

    >>> normalise_title("  Attention Is All You Need! ")
    'attention is all you need'
    """
    text = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NON_WORD.sub(" ", text).replace("_", " ").split())


#: "TRP: Trained Rank Pruning ...": a short name before a colon, with two capitals or more.
_ABBREVIATION = re.compile(r"^\s*([^\s:]{2,24})\s*:\s*(\S.*)$", re.DOTALL)
#: Normalised titles at least this similar (difflib ratio) are one paper: a typo, a
#: plural, a dropped article. Lower, and "Part 1"/"Part 2"-like pairs start to merge.
SIMILAR_TITLES = 0.95
_NUMBER = re.compile(r"\d+")
_BLOCK = 16


def split_abbreviation(title: str) -> tuple[str, str] | None:
    """``(name, rest)`` of a title with a leading abbreviation, both normalised ("TRP:
    Trained Rank Pruning for Efficient Deep Neural Networks" -> ("trp", "trained rank
    pruning for efficient deep neural networks")), or None if it has none. The rest must
    have four words or more, so "BERT: A Survey" does not become "a survey"."""
    match = _ABBREVIATION.match(title)
    if not match or sum(c.isupper() for c in match.group(1)) < 2:
        return None
    rest = normalise_title(match.group(2))
    return (normalise_title(match.group(1)), rest) if len(rest.split()) >= 4 else None


def similar_titles(a: str, b: str) -> bool:
    """Two normalised titles that are one paper's: at least :data:`SIMILAR_TITLES` alike
    and with the same numbers ("Llama 2" and "Llama 3" reports stay apart)."""
    if abs(len(a) - len(b)) > (1 - SIMILAR_TITLES) * max(len(a), len(b)) * 2:
        return False
    if _NUMBER.findall(a) != _NUMBER.findall(b):
        return False
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.quick_ratio() >= SIMILAR_TITLES and matcher.ratio() >= SIMILAR_TITLES


class NearTitles:
    """Titles seen so far, to find a new title's near-duplicate among them.

    Two titles are one paper when one is the other with an abbreviation in front
    (:func:`split_abbreviation`), or when they are :func:`similar_titles` and do not
    name two different abbreviations ("FooNet: X" and "BarNet: X" are two methods); and
    never when both have arXiv ids and the ids differ. Similar titles are looked for
    among those sharing their first or last 16 characters (a few characters' edit keeps
    one end), so a dump of 50,000 papers compares each with a handful, not all.
    """

    def __init__(self) -> None:
        self._by_norm: dict[str, tuple[str | None, object]] = {}
        self._by_rest: dict[str, tuple[str | None, object]] = {}  # titles with a name
        self._blocks: defaultdict[str, list[tuple]] = defaultdict(list)

    def add(self, title: str, norm: str, arxiv_id: str | None, value: object) -> None:
        self._by_norm.setdefault(norm, (arxiv_id, value))
        split = split_abbreviation(title)
        if split is not None:
            self._by_rest.setdefault(split[1], (arxiv_id, value))
        name = split and split[0]
        for block in {norm[:_BLOCK], norm[-_BLOCK:]}:
            self._blocks[block].append((norm, arxiv_id, name, value))

    def find(self, title: str, norm: str, arxiv_id: str | None) -> object | None:
        """The value added with a near-duplicate of this title, or None."""
        split = split_abbreviation(title)
        # With an abbreviation, the title without it; without one, a title that has one.
        entry = self._by_norm.get(split[1]) if split else self._by_rest.get(norm)
        if entry is not None and _same_or_no_id(arxiv_id, entry[0]):
            return entry[1]
        name = split and split[0]
        for block in {norm[:_BLOCK], norm[-_BLOCK:]}:
            for other, other_id, other_name, value in self._blocks.get(block, ()):
                if name and other_name and name != other_name:
                    continue
                if _same_or_no_id(arxiv_id, other_id) and similar_titles(norm, other):
                    return value
        return None


def _same_or_no_id(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


def detect_format(path: str | Path, data: bytes) -> str:
    """``"jsonl"``, ``"atom"`` or ``"text"``, from the extension, else the content."""
    suffix = Path(path).suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix in {".xml", ".atom"}:
        return "atom"
    if suffix == ".txt":
        return "text"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"{":
        return "jsonl"
    if head == b"<":
        return "atom"
    return "text"


def read_dump_fd(fd: int, *, source: str) -> bytes:
    """The bytes of an open dump file; :class:`DumpError` if it is larger than
    :data:`MAX_DUMP_BYTES`, checked before reading (and again while reading, should the
    file grow)."""
    size = os.fstat(fd).st_size
    if size > MAX_DUMP_BYTES:
        raise DumpError(
            f"the file is {size / 2**20:,.0f} MB; dumps are at most {MAX_DUMP_BYTES // 2**20} MB "
            "(split it into several files)",
            source=source,
        )
    chunks, total = [], 0
    while chunk := os.read(fd, 1 << 20):
        total += len(chunk)
        if total > MAX_DUMP_BYTES:
            raise DumpError(
                f"the file grew past {MAX_DUMP_BYTES // 2**20} MB while being read", source=source
            )
        chunks.append(chunk)
    return b"".join(chunks)


def parse_dump_file(path: str | Path) -> ParsedDump:
    """Read and parse one dump file. Raises :class:`DumpError` (or ``OSError``)."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = read_dump_fd(fd, source=path.name)
    finally:
        os.close(fd)
    return parse_dump(data, source=path.name, fmt=detect_format(path, data))


def parse_dump(data: bytes, *, source: str = "<dump>", fmt: str | None = None) -> ParsedDump:
    """Parse the bytes of a dump.

    Parameters
    ----------
    data : the raw file content.
    source : a name for error messages (usually the file name).
    fmt : ``"text"``, ``"jsonl"`` or ``"atom"``; detected from the content if None.

    Returns a :class:`ParsedDump` with at least one paper, or raises :class:`DumpError`.
    """
    if fmt is None:
        fmt = detect_format(source, data)
    if not data.strip():
        raise DumpError("the file is empty: a dump needs at least one paper", source=source)
    skipped: list[str] = []
    warnings: list[str] = []
    if fmt == "atom":
        papers = _parse_atom(data, source)
    else:
        text = _decode(data, source)
        if fmt == "jsonl":
            papers = _parse_jsonl(text, source)
        elif fmt == "text":
            papers, skipped, warnings = _parse_text(text, source)
        else:
            raise DumpError(f"unknown dump format {fmt!r}", source=source)
    for paper in papers:
        _check_storable(paper, source)
    unique, duplicates = _dedupe(papers)
    return ParsedDump(
        source=source,
        format=fmt,
        content_hash=hashlib.sha256(data).hexdigest(),
        papers=tuple(unique),
        duplicates_in_dump=duplicates,
        skipped_lines=tuple(skipped),
        warnings=tuple(warnings),
    )


def _dedupe(papers: list[ParsedPaper]) -> tuple[list[ParsedPaper], int]:
    """The papers in page order without repeats: the same id, the same normalised title,
    or a near-duplicate title (:class:`NearTitles`) of a paper kept before."""
    seen: set[str] = set()
    near = NearTitles()
    unique = []
    for paper in papers:
        key = f"id:{paper.external_id}" if paper.external_id else f"t:{paper.norm_title}"
        if key in seen or (paper.external_id and f"t:{paper.norm_title}" in seen):
            continue
        if near.find(paper.title, paper.norm_title, paper.external_id) is not None:
            continue
        seen.add(key)
        seen.add(f"t:{paper.norm_title}")
        near.add(paper.title, paper.norm_title, paper.external_id, True)
        unique.append(paper)
    return unique, len(papers) - len(unique)


# Control characters other than tab, newline and carriage return mark binary data.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _decode(data: bytes, source: str) -> str:
    nul = data.find(b"\x00")
    if nul != -1:
        raise DumpError(
            "binary data (a NUL byte); a dump must be plain text",
            source=source,
            line=data[:nul].count(b"\n") + 1,
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DumpError(
            f"not UTF-8 text (undecodable byte 0x{data[exc.start]:02x} at byte {exc.start}); "
            "save the dump as UTF-8",
            source=source,
            line=line,
        ) from None
    match = _CONTROL.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        raise DumpError(
            f"binary data (control character {match.group()!r}); a dump must be plain text",
            source=source,
            line=line,
        )
    return text


# Characters no renderer wants: C0/C1 controls other than whitespace, DEL, and the two
# non-characters XML 1.0 forbids. Raw control bytes in a file are refused as binary
# (:func:`_decode`); inside JSON strings (``"\u0000"``) or XML they are stripped:
# they are invisible, carry no meaning, and break the Atom feed.
_UNRENDERABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
# Half of a UTF-16 surrogate pair: a str can hold it, UTF-8 (and so SQLite) cannot.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _clean(text: str) -> str:
    # str.split() without arguments splits on all Unicode whitespace (NBSP
    # included) and is several times faster than a regex on long abstracts.
    text = " ".join(unicodedata.normalize("NFC", text).split())
    if not text.isprintable():  # fast path: almost every line is printable
        text = " ".join(_UNRENDERABLE.sub("", text).split())
    return text


def strip_unrenderable(text: str) -> str:
    """``text`` without the characters that XML (Atom), HTML and mail cannot carry.

    Ingest strips them already; renderers call this too, for text stored before
    that or written by hand. Costs one scan when there is nothing to strip.
    """
    if _UNRENDERABLE.search(text) is None:
        return text
    return _UNRENDERABLE.sub("", text)


def _check_storable(paper: ParsedPaper, source: str) -> None:
    """Refuse what the store could not write, so storing never fails on a parsed paper."""
    for name in ("title", "abstract", "external_id", "url", "published", "authors"):
        value = getattr(paper, name)
        for text in value if isinstance(value, tuple) else (value,):
            if text is not None and _SURROGATE.search(text):
                char = _SURROGATE.search(text).group()
                raise DumpError(
                    f"{name!r} holds a lone UTF-16 surrogate ({char!r}), which is not text: "
                    "fix the exporter's escapes",
                    source=source,
                    line=paper.line or None,
                )


# --- Daily Papers text ------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


def _is_boilerplate(line: str) -> bool:
    return line.casefold().strip() in KNOWN_BOILERPLATE


# Page chrome between papers that is known by its shape: a date, a vote or comment count.
_CHROME_SHAPE = re.compile(
    r"^(?:(?:published|submitted) on \w+ \d{1,2}(?:, \d{4})?"
    r"|\w{3,9}\.? \d{1,2}(?:, \d{4})?|\d{4}-\d{2}-\d{2}"
    r"|[\d.,]+[km]? ?(?:upvotes?|votes?|comments?|likes?)?)$",
    re.IGNORECASE,
)


def _is_known_chrome(line: str) -> bool:
    """Known page chrome: skipped without a word. Other skipped lines get a warning."""
    return (
        _is_boilerplate(line)
        or not any(c.isalpha() for c in line)
        or bool(_CHROME_SHAPE.match(line.strip()))
    )


def _looks_like_abstract(line: str) -> bool:
    """Abstracts are prose: long, or at least one finished sentence of several words."""
    words = len(line.split())
    if len(line) >= 250:
        return True
    return words >= 8 and bool(_SENTENCE_END.search(line))


def _looks_like_title(line: str) -> bool:
    """Titles are a short line, not a run of sentences."""
    if len(line) > MAX_TITLE_CHARS or _is_boilerplate(line):
        return False
    sentences = len(re.findall(r"[a-z0-9)\]][.!?] +[A-Z]", line))
    return sentences == 0 or len(line) < 200


def _parse_text(text: str, source: str) -> tuple[list[ParsedPaper], list[str], list[str]]:
    # (line number, cleaned line) for every non-blank line; blank lines are
    # optional separators in this format.
    lines = [(number, _clean(raw)) for number, raw in enumerate(text.splitlines(), start=1)]
    lines = [(n, line) for n, line in lines if line]
    if not lines:
        raise DumpError("the file is empty: a dump needs at least one paper", source=source)

    start = _find_first_paper(lines, source)
    body = lines[start:]
    # "Subscribe" is glued to the first title when the page is copied as text.
    n, first = body[0]
    match = re.match(r"^subscribe(?=\S)", first, flags=re.IGNORECASE)
    if match and len(first) > len(match.group()):
        body[0] = (n, first[match.end() :].strip())

    # Known chrome inside or after the list is dropped.
    body = [(n, line) for n, line in body if not _is_boilerplate(line)]

    papers: list[ParsedPaper] = []
    skipped = [line for _, line in lines[:start]]
    warnings: list[str] = []
    i = 0
    while i < len(body):
        n_title, title = body[i]
        if (
            len(title) <= MAX_BOILERPLATE_CHARS
            and i + 2 < len(body)
            and not _looks_like_abstract(body[i + 1][1])
            and _looks_like_abstract(body[i + 2][1])
            and _looks_like_title(body[i + 1][1])
        ):
            # A short line, then a title and its abstract: page chrome between
            # papers (a date, a vote count). Skip it rather than shift every
            # following title into the abstract column. Unless it is known chrome it may
            # be a paper whose abstract is missing: say so, naming the line.
            skipped.append(title)
            if not _is_known_chrome(title):
                warnings.append(
                    f"{source}:{n_title}: skipped {title[:80]!r}: a title with no abstract "
                    "after it (or unknown page chrome)"
                )
            i += 1
            continue
        if not _looks_like_title(title):
            if papers and _looks_like_abstract(title):
                # A second paragraph of the previous abstract.
                prev = papers[-1]
                papers[-1] = ParsedPaper(
                    title=prev.title, abstract=f"{prev.abstract}\n\n{title}", line=prev.line
                )
                i += 1
                continue
            raise DumpError(
                f"expected a paper title here but found {len(title)} characters of text "
                f"({title[:60]!r}...); titles are at most {MAX_TITLE_CHARS} characters",
                source=source,
                line=n_title,
            )
        if i + 1 >= len(body):
            raise DumpError(
                f"the title {title[:80]!r} has no abstract: the file ends after it "
                "(is the dump truncated?)",
                source=source,
                line=n_title,
            )
        _, abstract = body[i + 1]
        papers.append(ParsedPaper(title=title, abstract=abstract, line=n_title))
        i += 2
    if not papers:
        raise DumpError("no papers found in the dump", source=source)
    return papers, skipped, warnings


def _find_first_paper(lines: list[tuple[int, str]], source: str) -> int:
    """Index of the first title line, skipping page chrome before it.

    The first paper is the first (title, abstract) pair by shape. Every line
    skipped before it must be short, like page chrome; a long line there is
    content we would lose, so it is an error instead.
    """
    for i, (n, line) in enumerate(lines):
        glued = re.sub(r"^subscribe(?=\S)", "", line, flags=re.IGNORECASE)
        if (
            i + 1 < len(lines)
            and not _is_boilerplate(line)
            and _looks_like_title(glued)
            and not _looks_like_abstract(glued)
            and _looks_like_abstract(lines[i + 1][1])
        ):
            return i
        if len(line) > MAX_BOILERPLATE_CHARS and not _is_boilerplate(line):
            if _looks_like_abstract(line):
                message = "found an abstract-like line with no title before it"
            else:
                message = "expected a title line followed by an abstract line"
            raise DumpError(f"{message} ({line[:60]!r}...)", source=source, line=n)
    if len(lines) == 1 or all(_is_boilerplate(line) for _, line in lines):
        raise DumpError("no papers found in the dump", source=source)
    # Short lines only and none followed by prose: titles without abstracts.
    n, line = next((n, line) for n, line in lines if not _is_boilerplate(line))
    raise DumpError(
        f"no abstract found: {line[:60]!r} is not followed by an abstract line",
        source=source,
        line=n,
    )


# --- JSON Lines --------------------------------------------------------------


def _parse_jsonl(text: str, source: str) -> list[ParsedPaper]:
    papers = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        obj = _load_json_line(raw, source, number)
        if not isinstance(obj, dict):
            raise DumpError("each line must be a JSON object", source=source, line=number)
        title = obj.get("title")
        abstract = obj.get("abstract", obj.get("summary"))
        if not isinstance(title, str) or not _clean(title):
            raise DumpError('missing or empty "title"', source=source, line=number)
        if not isinstance(abstract, str):
            raise DumpError('missing "abstract" (a string)', source=source, line=number)
        if len(_clean(title)) > MAX_TITLE_CHARS:
            raise DumpError(
                f'"title" is {len(title)} characters; at most {MAX_TITLE_CHARS}',
                source=source,
                line=number,
            )
        authors = obj.get("authors") or []
        if isinstance(authors, str):
            authors = tuple(_clean(a) for a in authors.split(","))
        elif isinstance(authors, list) and all(isinstance(a, str) for a in authors):
            authors = tuple(_clean(a) for a in authors)
        else:
            raise DumpError(
                '"authors" must be a string or a list of strings', source=source, line=number
            )
        ident = obj.get("id")
        if ident is not None and (isinstance(ident, bool) or not isinstance(ident, str | int)):
            raise DumpError('"id" must be a string or a number', source=source, line=number)
        ident = _clean(str(ident)) if ident is not None else None
        if ident and len(ident) > MAX_ID_CHARS:
            raise DumpError(
                f'"id" is {len(ident)} characters; at most {MAX_ID_CHARS}',
                source=source,
                line=number,
            )
        for key in ("url", "published"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise DumpError(f'"{key}" must be a string', source=source, line=number)
        papers.append(
            ParsedPaper(
                title=_clean(title),
                abstract=_clean(abstract),
                external_id=ident or None,
                url=_clean(obj["url"]) or None if obj.get("url") else None,
                authors=tuple(a for a in authors if a),
                published=_clean(obj["published"]) or None if obj.get("published") else None,
                line=number,
            )
        )
    if not papers:
        raise DumpError("no papers found in the dump", source=source)
    return papers


def _load_json_line(raw: str, source: str, number: int) -> object:
    """One JSON value; every way :func:`json.loads` can fail becomes a :class:`DumpError`."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DumpError(f"invalid JSON: {exc.msg}", source=source, line=number) from None
    except RecursionError:
        raise DumpError("JSON nested too deeply", source=source, line=number) from None
    except ValueError as exc:  # an integer over Python's 4,300-digit limit
        message = f"unreadable JSON number: {str(exc)[:80]}"
        raise DumpError(message, source=source, line=number) from None


# --- arXiv Atom --------------------------------------------------------------

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV_ID = re.compile(r"arxiv\.org/abs/([^\s?#]+?)(v\d+)?$")


def _parse_atom(data: bytes, source: str) -> list[ParsedPaper]:
    try:
        root = SafeET.fromstring(data)
    except SafeET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise DumpError(f"invalid XML: {exc}", source=source, line=line) from None
    except DefusedXmlException as exc:
        raise DumpError(f"refused unsafe XML: {exc}", source=source) from None
    if root.tag != f"{_ATOM}feed":
        raise DumpError(
            f"expected an Atom <feed> (arXiv API format), found <{root.tag}>", source=source
        )
    papers = []
    for index, entry in enumerate(root.iter(f"{_ATOM}entry"), start=1):
        title = _clean(entry.findtext(f"{_ATOM}title") or "")
        abstract = _clean(entry.findtext(f"{_ATOM}summary") or "")
        raw_id = (entry.findtext(f"{_ATOM}id") or "").strip()
        if not title:
            raise DumpError(f"entry {index} has no <title>", source=source)
        match = _ARXIV_ID.search(raw_id)
        external_id = f"arxiv:{match.group(1)}" if match else (raw_id or None)
        authors = tuple(
            _clean(a.findtext(f"{_ATOM}name") or "") for a in entry.findall(f"{_ATOM}author")
        )
        url = None
        for link in entry.findall(f"{_ATOM}link"):
            if link.get("rel", "alternate") == "alternate":
                url = link.get("href")
        papers.append(
            ParsedPaper(
                title=title,
                abstract=abstract,
                external_id=external_id,
                url=url or (raw_id if raw_id.startswith("http") else None),
                authors=tuple(a for a in authors if a),
                published=(entry.findtext(f"{_ATOM}published") or "").strip() or None,
                line=index,
            )
        )
    if not papers:
        raise DumpError("the Atom feed has no <entry> elements", source=source)
    return papers
