"""A person's ratings to and from CSV, JSON and BibTeX. Pure: text in, records out.

The same formats serve the settings page and ``paperfeed ratings import/export``.
A paper is identified by its source id where it has one, else by its title (as
ingest does), so an export from one installation imports into another.

- **CSV**: header ``title,rating,external_id,url,authors,rated_at,interest``; ``rating`` is
  ``like`` or ``dislike`` (``1``/``-1`` also read); authors separated by ``; ``;
  ``interest`` the named interest a like is filed under (empty: the default one).
- **JSON**: ``{"format": "paperfeed-ratings", "version": 1, "ratings": [{...}]}`` with
  the same keys (``authors`` a list); a bare list of such objects is read too.
- **BibTeX**: one ``@misc`` per paper with a ``rating = {like}`` field (and an
  ``interest`` field for a like filed under a named interest). Entries
  without a ``rating`` field count as likes, so a reference manager's export of
  the papers you keep imports as likes.

Every parse error is a :class:`RatingsFormatError` naming the line, whatever the
file holds (binary data, another encoding, nesting or numbers Python refuses,
fields of the wrong type, lone UTF-16 surrogates): nothing is imported from a file
that has one. The BibTeX reader is linear in the file's size (``bench/ratings_import.py``).
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

FORMATS = ("csv", "json", "bibtex")
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "bibtex": "application/x-bibtex"}
EXTENSIONS = {"csv": "csv", "json": "json", "bibtex": "bib"}
CSV_COLUMNS = ("title", "rating", "external_id", "url", "authors", "rated_at", "interest")
_VALUES = {"like": 1, "dislike": -1, "1": 1, "+1": 1, "-1": -1}
_NAMES = {1: "like", -1: "dislike"}
# A cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first), possibly behind
# quotes we added before: written with one more leading quote, read back without it.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


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
    interest: str | None = None  # the named interest it is filed under (None: the default)

    def as_dict(self) -> dict:
        return {
            "title": self.title,
            "rating": _NAMES[self.value],
            "external_id": self.external_id,
            "url": self.url,
            "authors": list(self.authors),
            "rated_at": self.rated_at,
            "interest": self.interest,
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
            interest=row.get("interest"),
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
            writer.writerow([_csv_cell(row[c]) for c in CSV_COLUMNS])
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


def _csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: ``=HYPERLINK(...)`` is written
    ``'=HYPERLINK(...)`` (OWASP's neutralisation); :func:`_read_csv` undoes it."""
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA.match(text) else text


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
    if rec.interest:
        fields.append(("interest", rec.interest))
    ident = rec.arxiv_id or rec.external_id or ""
    key = re.sub(r"[^A-Za-z0-9:._-]", "", ident) or f"paperfeed{number}"
    body = "".join(f"  {name} = {_bib_value(value)},\n" for name, value in fields)
    return f"@misc{{{key},\n{body}}}\n"


# -- reading --------------------------------------------------------------------------------

# Half of a UTF-16 surrogate pair: a Python str can hold it; UTF-8, SQLite and the
# session cookie cannot (a flash message naming such a title broke every later page).
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# A text field longer than this is not a title, id or URL (csv's own limit is 128 KiB).
MAX_FIELD_CHARS = 4000


def _shown(raw: object) -> str:
    """``raw`` for an error message: its repr, cut short."""
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def decode_ratings_file(data: bytes, *, source: str = "<upload>") -> str:
    """The text of an uploaded or named ratings file: UTF-8, with or without a BOM.

    Binary data and other encodings are a :class:`RatingsFormatError` naming the line.
    """
    nul = data.find(b"\x00")
    if nul != -1:
        line = data.count(b"\n", 0, nul) + 1
        raise RatingsFormatError(source, line, "binary data (a NUL byte): not a ratings file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RatingsFormatError(
            source,
            line,
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); export the file again as UTF-8",
        ) from None


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
    key = str(raw).strip().lower() if isinstance(raw, str | int) and len(str(raw)) < 10 else None
    if key not in _VALUES:
        raise RatingsFormatError(source, line, f"rating must be like or dislike, not {_shown(raw)}")
    return _VALUES[key]


def _text(
    raw: object, source: str = "<upload>", line: int | None = None, name: str = ""
) -> str | None:
    """A text field, whitespace collapsed; None if empty. Refuses what is not text."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise RatingsFormatError(
            source, line, f"{name or 'a field'} must be text, not {_shown(raw)}"
        )
    text = " ".join(str(raw).split())
    if len(text) > MAX_FIELD_CHARS:
        raise RatingsFormatError(
            source,
            line,
            f"{name or 'a field'} is {len(text)} characters; at most {MAX_FIELD_CHARS}",
        )
    if _SURROGATE.search(text):
        raise RatingsFormatError(
            source, line, f"{name or 'a field'} holds a lone UTF-16 surrogate, which is not text"
        )
    return text or None


def _authors(raw: object, source: str, line: int | None, sep: str) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        raw = raw.split(sep)
    if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
        raise RatingsFormatError(
            source, line, f"authors must be a list of names or a string, not {_shown(raw)}"
        )
    names = (_text(a, source, line, "an author") for a in raw)
    return tuple(a for a in names if a)


def _record(fields: dict, value: object, source: str, line: int | None, sep: str) -> RatingRecord:
    return RatingRecord(
        title=_text(fields.get("title"), source, line, "the title") or "",
        value=_value(value, source, line),
        external_id=_text(fields.get("external_id"), source, line, "external_id"),
        url=_text(fields.get("url"), source, line, "url"),
        authors=_authors(fields.get("authors"), source, line, sep),
        rated_at=_text(fields.get("rated_at"), source, line, "rated_at"),
        interest=_text(fields.get("interest"), source, line, "interest"),
    )


def _read_csv(text: str, source: str) -> list[RatingRecord]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise RatingsFormatError(source, 1, f"not valid CSV: {exc}") from None
    if fieldnames is None:
        raise RatingsFormatError(source, None, "the file is empty")
    header = [name.strip().lower() for name in fieldnames]
    missing = [c for c in ("title", "rating") if c not in header]
    if missing:
        raise RatingsFormatError(source, 1, f"the header has no {' or '.join(missing)} column")
    reader.fieldnames = header
    records = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a field over csv's 128 KiB limit, a stray quote
            # line_num counts the lines read before the one that failed.
            line = reader.line_num + 1
            raise RatingsFormatError(source, line, f"not valid CSV: {exc}") from None
        line = reader.line_num
        if None in row:
            raise RatingsFormatError(source, line, "more fields than the header has")
        row = {k: v[1:] if v and v[0] == "'" and _FORMULA.match(v) else v for k, v in row.items()}
        if not _text(row.get("title"), source, line, "the title"):
            if not any((v or "").strip() for v in row.values()):
                continue  # blank line
            raise RatingsFormatError(source, line, "the title is empty")
        records.append(_record(row, row.get("rating"), source, line, ";"))
    return records


def _read_json(text: str, source: str) -> list[RatingRecord]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RatingsFormatError(source, exc.lineno, f"not valid JSON: {exc.msg}") from None
    except RecursionError:
        line = _line_of(text, re.search(r"[\[{]", text))
        raise RatingsFormatError(source, line, "not valid JSON: nested too deeply") from None
    except ValueError:  # an integer over Python's 4,300-digit limit
        line = _line_of(text, re.search(r"\d{4300}", text))
        raise RatingsFormatError(
            source, line, "a number with more than 4,300 digits: not a rating file"
        ) from None
    items = body.get("ratings") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise RatingsFormatError(source, None, 'expected a list of ratings or {"ratings": [...]}')
    lines = _item_lines(text, len(items))
    records = []
    for index, item in enumerate(items):
        line = lines[index]
        if not isinstance(item, dict):
            raise RatingsFormatError(source, line, f"rating {index + 1} is not an object")
        if not _text(item.get("title"), source, line, "the title"):
            raise RatingsFormatError(source, line, f"rating {index + 1} has no title")
        records.append(_record(item, item.get("rating", item.get("value")), source, line, ";"))
    return records


def _line_of(text: str, match: re.Match | None) -> int:
    return text.count("\n", 0, match.start()) + 1 if match else 1


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


_BIB_IDENT = re.compile(r"[^\s,={}()\"#@]+")
_BIB_SPACE = re.compile(r"\s*")
_BIB_BRACE = re.compile(r"[{}\\]")
_BIB_QUOTE = re.compile(r'[{}"]')


class _BibReader:
    """A small BibTeX reader: entries of ``name = {braced} | "quoted" | bare`` fields.

    Linear in the text: every scan moves forward with a compiled pattern, and line
    numbers come from one table of newline offsets (counting newlines from the start
    for each entry made a 2 MB file take 16 s).
    """

    def __init__(self, text: str, source: str):
        self.text, self.source, self.pos = text, source, 0
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_left(self._newlines, self.pos if pos is None else pos) + 1

    def fail(self, message: str, pos: int | None = None) -> RatingsFormatError:
        return RatingsFormatError(self.source, self.line(pos), message)

    def skip_space(self) -> None:
        self.pos = _BIB_SPACE.match(self.text, self.pos).end()

    def ident(self, what: str) -> str:
        self.skip_space()
        match = _BIB_IDENT.match(self.text, self.pos)
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
        while (match := _BIB_BRACE.search(self.text, self.pos)) is not None:
            char = match.group()
            if char == "\\":
                self.pos = match.end() + 1
                continue
            depth += 1 if char == "{" else -1
            self.pos = match.end()
            if depth == 0:
                return self.text[start + 1 : self.pos - 1]
        raise self.fail("a '{' is never closed", start)

    def quoted(self) -> str:
        start, depth = self.pos, 0
        self.pos += 1
        while (match := _BIB_QUOTE.search(self.text, self.pos)) is not None:
            char = match.group()
            self.pos = match.end()
            if char == '"' and depth == 0:
                return self.text[start + 1 : self.pos - 1]
            depth += {"{": 1, "}": -1}.get(char, 0)
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
        record = {
            "title": title,
            "external_id": _eprint_id(fields),
            "url": fields.get("url"),
            "authors": _unbrace(fields.get("author", "")).split(" and "),
            "rated_at": fields.get("rated"),
            "interest": _unbrace(fields["interest"]) if "interest" in fields else None,
        }
        records.append(_record(record, fields.get("rating", "like"), source, line, " and "))
    return records
