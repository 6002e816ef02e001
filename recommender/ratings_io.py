"""A person's ratings to and from CSV, JSON and BibTeX. Pure: text in, records out.

The same formats serve the settings page and ``paperfeed ratings import/export``.
A paper is identified by its source id where it has one, else by its title (as
ingest does), so an export from one installation imports into another.

- **CSV**: header ``title,rating,external_id,url,authors,rated_at``; ``rating`` is
  ``like`` or ``dislike`` (``1``/``-1`` also read); authors separated by ``; ``.
- **JSON**: ``{"format": "paperfeed-ratings", "version": 1, "ratings": [{...}]}`` with
  the same keys (``authors`` a list); a bare list of such objects is read too.
- **BibTeX**: one ``@misc`` per paper with a ``rating = {like}`` field. Entries
  without a ``rating`` field count as likes, so a reference manager's export of
  the papers you keep imports as likes.

Every parse error is a :class:`RatingsFormatError` naming the line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

FORMATS = ("csv", "json", "bibtex")
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "bibtex": "application/x-bibtex"}
EXTENSIONS = {"csv": "csv", "json": "json", "bibtex": "bib"}
CSV_COLUMNS = ("title", "rating", "external_id", "url", "authors", "rated_at")
_VALUES = {"like": 1, "dislike": -1, "1": 1, "+1": 1, "-1": -1}
_NAMES = {1: "like", -1: "dislike"}


class RatingsFormatError(ValueError):
    """A ratings file that cannot be read; ``line`` is 1-based (None: the whole file)."""

    def __init__(self, source: str, line: int | None, message: str):
        self.source, self.line = source, line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class RatingRecord:
    """One rating as it travels between installations."""

    title: str
    value: int  # +1 like, -1 dislike
    external_id: str | None = None
    url: str | None = None
    authors: tuple[str, ...] = ()
    rated_at: str | None = None
    arxiv_id: str | None = None
    published: str | None = None

    def as_dict(self) -> dict:
        return {
            "title": self.title,
            "rating": _NAMES[self.value],
            "external_id": self.external_id,
            "url": self.url,
            "authors": list(self.authors),
            "rated_at": self.rated_at,
        }


def records_from_rows(rows: Iterable[dict]) -> list[RatingRecord]:
    """Records from :func:`recommender.store.ratings_for_export` rows."""
    return [
        RatingRecord(
            title=row["title"],
            value=row["value"],
            external_id=row.get("external_id"),
            url=row.get("url"),
            authors=tuple(row.get("authors") or ()),
            rated_at=row.get("created_at"),
            arxiv_id=row.get("arxiv_id"),
            published=row.get("published"),
        )
        for row in rows
    ]


def guess_format(name: str, text: str) -> str:
    """The format of an upload from its file name, else from its first character."""
    lowered = name.lower()
    for fmt, ext in EXTENSIONS.items():
        if lowered.endswith("." + ext) or (fmt == "bibtex" and lowered.endswith(".bibtex")):
            return fmt
    start = text.lstrip("\ufeff \t\r\n")[:1]
    return {"{": "json", "[": "json", "@": "bibtex"}.get(start, "csv")


# -- writing --------------------------------------------------------------------------------


def write_ratings(records: Iterable[RatingRecord], fmt: str) -> str:
    """Serialise ``records`` as ``fmt`` (one of :data:`FORMATS`)."""
    records = list(records)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for rec in records:
            row = rec.as_dict()
            row["authors"] = "; ".join(rec.authors)
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
        return out.getvalue()
    if fmt == "json":
        body = {
            "format": "paperfeed-ratings",
            "version": 1,
            "ratings": [r.as_dict() for r in records],
        }
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    if fmt == "bibtex":
        return "\n".join(_bibtex_entry(i, rec) for i, rec in enumerate(records, 1))
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def _bib_value(text: str) -> str:
    # Braces delimit BibTeX values: drop any that would unbalance the entry.
    text = " ".join(text.replace("{", "").replace("}", "").split())
    return "{" + text + "}"


def _bibtex_entry(number: int, rec: RatingRecord) -> str:
    """One ``@misc`` entry in the form Zotero and biblatex read for arXiv papers:
    ``author`` (``and``-joined), ``year``, ``eprint`` with ``archivePrefix = {arXiv}``."""
    fields = [("title", rec.title)]
    if rec.authors:
        fields.append(("author", " and ".join(rec.authors)))
    year = re.match(r"(\d{4})", rec.published or "")
    if year:
        fields.append(("year", year.group(1)))
    if rec.url:
        fields.append(("url", rec.url))
    if rec.arxiv_id:
        fields += [("eprint", rec.arxiv_id), ("archivePrefix", "arXiv")]
    elif rec.external_id:
        fields.append(("eprint", rec.external_id))
    fields.append(("rating", _NAMES[rec.value]))
    if rec.rated_at:
        fields.append(("rated", rec.rated_at))
    ident = rec.arxiv_id or rec.external_id or ""
    key = re.sub(r"[^A-Za-z0-9:._-]", "", ident) or f"paperfeed{number}"
    body = "".join(f"  {name} = {_bib_value(value)},\n" for name, value in fields)
    return f"@misc{{{key},\n{body}}}\n"


# -- reading --------------------------------------------------------------------------------


def read_ratings(text: str, fmt: str, *, source: str = "<upload>") -> list[RatingRecord]:
    """Parse ``text`` written in ``fmt``; :class:`RatingsFormatError` names the bad line."""
    text = text.removeprefix("\ufeff")
    if fmt == "csv":
        return _read_csv(text, source)
    if fmt == "json":
        return _read_json(text, source)
    if fmt == "bibtex":
        return _read_bibtex(text, source)
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def _value(raw: object, source: str, line: int | None) -> int:
    key = str(raw).strip().lower() if raw is not None else ""
    if key not in _VALUES:
        raise RatingsFormatError(source, line, f"rating must be like or dislike, not {raw!r}")
    return _VALUES[key]


def _text(raw: object) -> str | None:
    text = " ".join(str(raw).split()) if raw is not None else ""
    return text or None


def _read_csv(text: str, source: str) -> list[RatingRecord]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        raise RatingsFormatError(source, None, "the file is empty")
    header = [name.strip().lower() for name in reader.fieldnames]
    missing = [c for c in ("title", "rating") if c not in header]
    if missing:
        raise RatingsFormatError(source, 1, f"the header has no {' or '.join(missing)} column")
    reader.fieldnames = header
    records = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise RatingsFormatError(source, line, "more fields than the header has")
        title = _text(row.get("title"))
        if not title:
            if not any((v or "").strip() for v in row.values()):
                continue  # blank line
            raise RatingsFormatError(source, line, "the title is empty")
        authors = [a.strip() for a in (row.get("authors") or "").split(";") if a.strip()]
        records.append(
            RatingRecord(
                title=title,
                value=_value(row.get("rating"), source, line),
                external_id=_text(row.get("external_id")),
                url=_text(row.get("url")),
                authors=tuple(authors),
                rated_at=_text(row.get("rated_at")),
            )
        )
    return records


def _read_json(text: str, source: str) -> list[RatingRecord]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RatingsFormatError(source, exc.lineno, f"not valid JSON: {exc.msg}") from None
    items = body.get("ratings") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise RatingsFormatError(source, None, 'expected a list of ratings or {"ratings": [...]}')
    lines = _item_lines(text, len(items))
    records = []
    for index, item in enumerate(items):
        line = lines[index]
        if not isinstance(item, dict):
            raise RatingsFormatError(source, line, f"rating {index + 1} is not an object")
        title = _text(item.get("title"))
        if not title:
            raise RatingsFormatError(source, line, f"rating {index + 1} has no title")
        authors = item.get("authors") or []
        if isinstance(authors, str):
            authors = [a.strip() for a in authors.split(";")]
        records.append(
            RatingRecord(
                title=title,
                value=_value(item.get("rating", item.get("value")), source, line),
                external_id=_text(item.get("external_id")),
                url=_text(item.get("url")),
                authors=tuple(str(a).strip() for a in authors if str(a).strip()),
                rated_at=_text(item.get("rated_at")),
            )
        )
    return records


def _item_lines(text: str, count: int) -> list[int | None]:
    """Best-effort line of each item of the ratings list, for error messages.

    Found by scanning for the objects' opening braces at the list's depth; None
    where the scan cannot tell (the message then still names the item).
    """
    lines: list[int | None] = []
    depth, line, in_string, escaped = 0, 1, False, False
    list_depth = None
    for char in text:
        if char == "\n":
            line += 1
        if in_string:
            escaped = not escaped and char == "\\"
            if char == '"' and not escaped:
                in_string = False
            continue
        if char == '"':
            in_string, escaped = True, False
        elif char in "[{":
            if char == "{" and list_depth is not None and depth == list_depth:
                lines.append(line)
            if char == "[" and list_depth is None:
                list_depth = depth + 1
            depth += 1
        elif char in "]}":
            depth -= 1
    return (lines + [None] * count)[:count]


class _BibReader:
    """A small BibTeX reader: entries of ``name = {braced} | "quoted" | bare`` fields."""

    def __init__(self, text: str, source: str):
        self.text, self.source, self.pos = text, source, 0

    def line(self, pos: int | None = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def fail(self, message: str, pos: int | None = None) -> RatingsFormatError:
        return RatingsFormatError(self.source, self.line(pos), message)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def ident(self, what: str) -> str:
        self.skip_space()
        match = re.compile(r"[^\s,={}()\"#@]+").match(self.text, self.pos)
        if not match:
            raise self.fail(f"expected {what}")
        self.pos = match.end()
        return match.group()

    def expect(self, char: str) -> None:
        self.skip_space()
        if not self.text.startswith(char, self.pos):
            found = self.text[self.pos : self.pos + 1] or "the end of the file"
            raise self.fail(f"expected {char!r}, found {found!r}")
        self.pos += 1

    def braced(self) -> str:
        start, depth = self.pos, 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            depth += char == "{"
            depth -= char == "}"
            self.pos += 1
            if depth == 0:
                return self.text[start + 1 : self.pos - 1]
        raise self.fail("a '{' is never closed", start)

    def quoted(self) -> str:
        start, depth = self.pos, 0
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            depth += char == "{"
            depth -= char == "}"
            self.pos += 1
            if char == '"' and depth == 0:
                return self.text[start + 1 : self.pos - 1]
        raise self.fail("a '\"' is never closed", start)

    def value(self) -> str:
        parts = []
        while True:
            self.skip_space()
            char = self.text[self.pos : self.pos + 1]
            if char == "{":
                parts.append(self.braced())
            elif char == '"':
                parts.append(self.quoted())
            else:
                parts.append(self.ident("a value"))
            self.skip_space()
            if not self.text.startswith("#", self.pos):
                return "".join(parts)
            self.pos += 1

    def entries(self) -> list[tuple[int, dict[str, str]]]:
        found = []
        while (at := self.text.find("@", self.pos)) != -1:
            self.pos = at + 1
            kind = self.ident("an entry type after '@'").lower()
            self.skip_space()
            opener = self.text[self.pos : self.pos + 1]
            if opener not in ("{", "("):
                raise self.fail(f"expected '{{' after @{kind}")
            if kind in ("comment", "preamble", "string"):
                self.braced() if opener == "{" else self.expect("(")
                continue
            closer = "}" if opener == "{" else ")"
            self.pos += 1
            self.ident("a citation key")
            fields: dict[str, str] = {}
            while True:
                self.skip_space()
                if self.text.startswith(closer, self.pos):
                    self.pos += 1
                    break
                self.expect(",")
                self.skip_space()
                if self.text.startswith(closer, self.pos):
                    self.pos += 1
                    break
                name = self.ident("a field name").lower()
                self.expect("=")
                fields[name] = self.value()
            found.append((self.line(at), fields))
        return found


def _unbrace(text: str) -> str:
    return " ".join(re.sub(r"(?<!\\)[{}]", "", text).replace("\\&", "&").split())


def _eprint_id(fields: dict[str, str]) -> str | None:
    """The external id of an entry: an arXiv ``eprint`` becomes ``arxiv:ID``, as stored."""
    eprint = _text(fields.get("eprint"))
    if eprint and (_text(fields.get("archiveprefix")) or "").lower() == "arxiv":
        return "arxiv:" + eprint.removeprefix("arXiv:").removeprefix("arxiv:")
    return eprint


def _read_bibtex(text: str, source: str) -> list[RatingRecord]:
    records = []
    for line, fields in _BibReader(text, source).entries():
        title = _unbrace(fields.get("title", ""))
        if not title:
            raise RatingsFormatError(source, line, "this entry has no title")
        authors = [a.strip() for a in _unbrace(fields.get("author", "")).split(" and ")]
        records.append(
            RatingRecord(
                title=title,
                value=_value(fields.get("rating", "like"), source, line),
                external_id=_eprint_id(fields),
                url=_text(fields.get("url")),
                authors=tuple(a for a in authors if a),
                rated_at=_text(fields.get("rated")),
            )
        )
    return records
