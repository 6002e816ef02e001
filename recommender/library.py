"""A person's own library as the start of their profile.

Reading is pure (text in, entries out); :func:`import_library` joins it with the arXiv API
and the store.

Reads what reference managers export and what people paste:

- **BibTeX** (Zotero, Mendeley, JabRef): ``title``, ``abstract``, ``author``, ``year``,
  ``eprint`` (with ``archivePrefix = {arXiv}``), ``doi``; LaTeX accents (``{\\"u}``) and
  protective braces are undone.
- **RIS** (Zotero, Mendeley, EndNote): ``TY`` ... ``ER`` records with ``TI``/``T1``,
  ``AB``/``N2``, ``AU``/``A1``, ``PY``/``Y1``/``DA``, ``DO``, ``UR``.
- **CSV**: a header with ``title`` and any of ``abstract``, ``authors`` (``;``-separated),
  ``year``, ``doi``, ``arxiv_id`` (a paperfeed ratings export is read too).
- **ids**: one arXiv id, arXiv URL or DOI a line (``#`` starts a comment).

A file that cannot be read is a :class:`~recommender.ratings_io.RatingsFormatError` naming
its line, and nothing of it is imported. An entry that is readable but has no title (a bare
id arXiv did not resolve, a DOI alone) is *unreadable*: it is reported with its line and
the rest are imported. :func:`resolve_arxiv_ids` fills titles from the arXiv API.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace

from .ratings_io import RatingsFormatError, _BibReader, _text

FORMATS = ("bibtex", "ris", "csv", "ids")
EXTENSIONS = {"bib": "bibtex", "bibtex": "bibtex", "ris": "ris", "csv": "csv", "txt": "ids"}
#: Ids asked of the arXiv API per request (arXiv's own id_list limit is far above).
ARXIV_BATCH = 50

_ARXIV = re.compile(
    r"^(?:arxiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/)?"
    r"(\d{4}\.\d{4,5}|[a-z][a-z.-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?(?:\.pdf)?$",
    re.IGNORECASE,
)
_DOI = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)
_YEAR = re.compile(r"(1[89]\d\d|2\d\d\d)")


@dataclass(frozen=True)
class LibraryEntry:
    """One reference of a library file; ``line`` is where it starts (1-based)."""

    line: int
    title: str | None = None
    abstract: str = ""
    authors: tuple[str, ...] = ()
    year: str | None = None
    arxiv_id: str | None = None
    doi: str | None = None

    @property
    def ident(self) -> str:
        """How an error message names the entry."""
        if self.arxiv_id:
            return f"arXiv {self.arxiv_id}"
        return f"DOI {self.doi}" if self.doi else "this entry"


@dataclass(frozen=True)
class Unreadable:
    line: int
    why: str


def arxiv_id_in(text: str | None) -> str | None:
    """The bare arXiv id (no version) of ``2301.00001v2``, ``arXiv:…``, an arxiv.org URL."""
    match = _ARXIV.match((text or "").strip())
    return match.group(1) if match else None


def doi_in(text: str | None) -> str | None:
    """The DOI (lower case) of ``10.1000/x``, ``doi:…`` or a doi.org URL."""
    match = _DOI.match((text or "").strip())
    return match.group(1).lower() if match else None


def guess_library_format(name: str, text: str) -> str:
    """The format of an upload from its file name, else from its content."""
    ext = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    start = text.lstrip("\ufeff \t\r\n")
    if start.startswith("@"):
        return "bibtex"
    if re.match(r"TY  - ", start):
        return "ris"
    first = start.split("\n", 1)[0]
    return "csv" if "," in first and "title" in first.lower() else "ids"


def read_library(text: str, fmt: str, *, source: str = "<upload>") -> list[LibraryEntry]:
    """Parse ``text`` written in ``fmt`` (one of :data:`FORMATS`)."""
    text = text.removeprefix("\ufeff")
    readers: dict[str, Callable[[str, str], list[LibraryEntry]]] = {
        "bibtex": _read_bibtex,
        "ris": _read_ris,
        "csv": _read_csv,
        "ids": _read_ids,
    }
    if fmt not in readers:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    entries = readers[fmt](text, source)
    if not entries:
        raise RatingsFormatError(source, None, f"no references found (read as {fmt})")
    return entries


def _entry(line: int, source: str, **fields) -> LibraryEntry:
    """An entry with every text field checked (length, surrogates) and spacing collapsed."""
    title = _text(fields.get("title"), source, line, "the title")
    abstract = _text(fields.get("abstract"), source, line, "the abstract") or ""
    authors = tuple(
        a for a in (_text(n, source, line, "an author") for n in fields.get("authors", ())) if a
    )
    year = _YEAR.search(fields.get("year") or "")
    return LibraryEntry(
        line=line,
        title=title,
        abstract=abstract,
        authors=authors,
        year=year.group(1) if year else None,
        arxiv_id=arxiv_id_in(fields.get("arxiv_id")),
        doi=doi_in(fields.get("doi")),
    )


# -- BibTeX -----------------------------------------------------------------------------------

#: LaTeX accent commands and the combining mark each stands for.
_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
}
_ACCENT = re.compile(r"\\([\"'`^~=.]|[uvHckr](?![A-Za-z]))\s*\{?\\?([A-Za-z])\}?")
_LETTERS = {
    r"\ss": "ß",
    r"\o": "ø",
    r"\O": "Ø",
    r"\ae": "æ",
    r"\AE": "Æ",
    r"\l": "ł",
    r"\L": "Ł",
    r"\aa": "å",
    r"\AA": "Å",
    r"\i": "ı",
}
_LETTER = re.compile(r"\\(ss|o|O|ae|AE|l|L|aa|AA|i)(?![A-Za-z])\s*")


def latex_to_text(value: str) -> str:
    """``{M{\\"u}ller}`` -> ``Müller``: accents composed, braces and ``\\&`` undone."""
    value = _ACCENT.sub(
        lambda m: unicodedata.normalize("NFC", m.group(2) + _ACCENTS[m.group(1)]), value
    )
    value = _LETTER.sub(lambda m: _LETTERS["\\" + m.group(1)], value)
    value = re.sub(r"\\([&%$#_])", r"\1", value)
    value = re.sub(r"\\(?:emph|textit|textbf|mathrm|text)\s*", "", value)
    return " ".join(re.sub(r"(?<!\\)[{}]", "", value).split())


def _bib_author(name: str) -> str:
    """``Lovelace, Ada`` -> ``Ada Lovelace`` (BibTeX's "last, first" form)."""
    if name.count(",") == 1:
        last, first = (part.strip() for part in name.split(","))
        return f"{first} {last}".strip()
    return name


def _read_bibtex(text: str, source: str) -> list[LibraryEntry]:
    entries = []
    for line, fields in _BibReader(text, source).entries():
        authors = latex_to_text(fields.get("author", ""))
        eprint = fields.get("eprint", "")
        prefix = (fields.get("archiveprefix") or fields.get("eprinttype") or "").lower()
        arxiv = eprint if (prefix == "arxiv" or arxiv_id_in(eprint)) else ""
        if not arxiv:  # Zotero writes arXiv preprints' ids into url, note or journal
            arxiv = arxiv_id_in(fields.get("url")) or ""
        if not arxiv:
            for name in ("note", "journal", "number"):
                found = re.search(r"arXiv[:/]\s*([\w./-]+)", fields.get(name, ""), re.IGNORECASE)
                if found:
                    arxiv = found.group(1)
                    break
        entry = _entry(
            line,
            source,
            title=latex_to_text(fields.get("title", "")),
            abstract=latex_to_text(fields.get("abstract", "")),
            authors=[_bib_author(a) for a in re.split(r"\s+and\s+", authors) if a.strip()],
            year=fields.get("year") or fields.get("date"),
            arxiv_id=arxiv,
            doi=fields.get("doi"),
        )
        entries.append(entry)
    return entries


# -- RIS --------------------------------------------------------------------------------------

_RIS_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")


def _read_ris(text: str, source: str) -> list[LibraryEntry]:
    entries: list[LibraryEntry] = []
    record: dict[str, list[str]] | None = None
    start = 0
    last = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip():
            continue
        match = _RIS_LINE.match(line)
        if not match:
            if record is not None and last is not None:  # a wrapped value continues
                record[last][-1] += " " + line.strip()
                continue
            raise RatingsFormatError(source, number, "not an RIS line (expected 'XX  - value')")
        tag, value = match.group(1), (match.group(2) or "").strip()
        if tag == "TY":
            if record is not None:
                raise RatingsFormatError(source, number, "a new record (TY) before the last ER")
            record, start, last = {}, number, None
            continue
        if record is None:
            raise RatingsFormatError(source, number, f"{tag} outside a record (TY ... ER)")
        if tag == "ER":
            entries.append(_ris_entry(record, start, source))
            record, last = None, None
            continue
        record.setdefault(tag, []).append(value)
        last = tag
    if record is not None:
        raise RatingsFormatError(source, start, "this record never ends (no ER line)")
    return entries


def _ris_entry(record: dict[str, list[str]], line: int, source: str) -> LibraryEntry:
    def first(*tags: str) -> str:
        return next((v for t in tags for v in record.get(t, []) if v), "")

    urls = record.get("UR", [])
    arxiv = next((a for a in map(arxiv_id_in, urls) if a), None)
    return _entry(
        line,
        source,
        title=first("TI", "T1", "CT"),
        abstract=first("AB", "N2"),
        authors=[_bib_author(a) for t in ("AU", "A1") for a in record.get(t, [])],
        year=first("PY", "Y1", "DA"),
        arxiv_id=arxiv or first("AN") if arxiv_id_in(first("AN")) else arxiv,
        doi=first("DO"),
    )


# -- CSV and id lists -------------------------------------------------------------------------


def _read_csv(text: str, source: str) -> list[LibraryEntry]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    except csv.Error as exc:
        raise RatingsFormatError(source, 1, f"not valid CSV: {exc}") from None
    if not header:
        raise RatingsFormatError(source, None, "the file is empty")
    if not {"title", "doi", "arxiv_id", "external_id"} & set(header):
        raise RatingsFormatError(source, 1, "the header has no title, doi or arxiv_id column")
    reader.fieldnames = header
    entries = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise RatingsFormatError(source, reader.line_num + 1, f"not valid CSV: {exc}") from None
        line = reader.line_num
        if None in row:
            raise RatingsFormatError(source, line, "more fields than the header has")
        if not any((v or "").strip() for v in row.values()):
            continue
        if (row.get("rating") or "like").strip().lower() not in ("like", "1", "+1"):
            continue  # a ratings export: a dislike is not part of the library
        entries.append(
            _entry(
                line,
                source,
                title=row.get("title"),
                abstract=row.get("abstract"),
                authors=(row.get("authors") or "").split(";"),
                year=row.get("year") or row.get("published"),
                arxiv_id=row.get("arxiv_id") or row.get("external_id"),
                doi=row.get("doi") or row.get("external_id"),
            )
        )
    return entries


def _read_ids(text: str, source: str) -> list[LibraryEntry]:
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        value = raw.split("#", 1)[0].strip()
        if not value:
            continue
        arxiv, doi = arxiv_id_in(value), doi_in(value)
        if not (arxiv or doi):
            raise RatingsFormatError(
                source, number, f"{value[:60]!r} is neither an arXiv id nor a DOI"
            )
        entries.append(LibraryEntry(line=number, arxiv_id=arxiv, doi=doi))
    return entries


# -- resolving --------------------------------------------------------------------------------


def needs_arxiv(entries: list[LibraryEntry]) -> list[str]:
    """The arXiv ids of entries that have no title yet, each once, in file order."""
    return list(dict.fromkeys(e.arxiv_id for e in entries if e.arxiv_id and not e.title))


def resolve_arxiv_ids(
    entries: list[LibraryEntry], found: dict[str, LibraryEntry]
) -> list[LibraryEntry]:
    """Entries with what arXiv said about their id (``found``: id -> metadata) filled in
    where the file had nothing (its own title, abstract and authors win)."""
    out = []
    for entry in entries:
        meta = found.get(entry.arxiv_id or "")
        if meta is not None:
            entry = replace(
                entry,
                title=entry.title or meta.title,
                abstract=entry.abstract or meta.abstract,
                authors=entry.authors or meta.authors,
                year=entry.year or meta.year,
            )
        out.append(entry)
    return out


# -- importing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryImport:
    """What an import did: the counts the message gives, and the unreadable entries."""

    entries: int
    matched: int
    added: int
    already: int
    unreadable: tuple[Unreadable, ...]
    arxiv_error: str | None = None
    disliked: int = 0  # matched papers the person disliked: the dislike is kept

    def message(self) -> str:
        """``"42 entries: 17 matched, 25 added to your profile, 0 unreadable"`` and why."""
        text = (
            f"{self.entries} {'entry' if self.entries == 1 else 'entries'}: "
            f"{self.matched} matched, {self.added} added to your profile, "
            f"{len(self.unreadable)} unreadable"
        )
        if self.already:
            text += f", {self.already} already in your profile"
        if self.disliked:
            text += f", {self.disliked} kept as disliked (you disliked them here)"
        if self.unreadable:
            shown = "; ".join(f"line {u.line}: {u.why}" for u in self.unreadable[:3])
            more = len(self.unreadable) - 3
            text += f" ({shown}{f'; and {more} more' if more > 0 else ''})"
        return text + "."

    def as_dict(self) -> dict:
        return {
            "entries": self.entries,
            "matched": self.matched,
            "added": self.added,
            "already": self.already,
            "disliked": self.disliked,
            "unreadable": [{"line": u.line, "why": u.why} for u in self.unreadable],
            "arxiv_error": self.arxiv_error,
            "message": self.message(),
        }


def import_library(db, user_id: int, entries: list[LibraryEntry], *, cfg=None) -> LibraryImport:
    """Resolve the entries' bare arXiv ids through the arXiv API (only ids paperfeed has not
    stored, :data:`ARXIV_BATCH` a request, paced like every arXiv request), then match or add
    them all in one transaction (:func:`recommender.store.import_library`).

    When arXiv cannot be reached, the ids it was to resolve are reported unreadable and the
    rest is imported.
    """
    from . import store
    from .sources import arxiv, client_for, load_source_settings
    from .sources.http import FetchError

    wanted = needs_arxiv(entries)
    wanted = [a for a in wanted if a not in store.known_arxiv_ids(db, wanted)]
    found: dict[str, LibraryEntry] = {}
    error = None
    if wanted:
        cfg = cfg or load_source_settings()  # callers pass Settings.sources
        client = client_for("arxiv", cfg)
        try:
            for start in range(0, len(wanted), ARXIV_BATCH):
                papers = arxiv.fetch_ids(
                    client, cfg.arxiv_api_url, wanted[start : start + ARXIV_BATCH]
                )
                for arxiv_id, paper in papers.items():
                    found[arxiv_id] = LibraryEntry(
                        line=0,
                        title=paper.title,
                        abstract=paper.abstract,
                        authors=paper.authors,
                        year=(paper.published or "")[:4] or None,
                    )
        except FetchError as exc:
            error = str(exc)
    entries = resolve_arxiv_ids(entries, found)
    result = store.import_library(db, user_id, entries)
    unreadable = []
    for entry in result["untitled"]:
        if entry.arxiv_id and error is None and entry.arxiv_id in wanted:
            why = f"arXiv has no paper {entry.arxiv_id}"
        elif entry.arxiv_id and error is not None:
            why = f"{entry.ident} could not be looked up: arXiv did not answer"
        else:
            why = f"{entry.ident} has no title and is not in paperfeed"
        unreadable.append(Unreadable(entry.line, why))
    return LibraryImport(
        entries=len(entries),
        matched=result["matched"],
        added=result["added"],
        already=result["already"],
        unreadable=tuple(unreadable),
        arxiv_error=error,
        disliked=result["disliked"],
    )
