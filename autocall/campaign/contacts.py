"""Contact lists: a streaming, strict CSV reader that checks the header against the script and each row on its own.

The file is read line by line (never loaded whole), decoded as UTF-8 (a BOM
is allowed) and hashed as it goes, so that a resumed campaign can tell
whether the list changed. The delimiter is ``,``, ``;`` or a tab, found in
the header line or given (``--delimiter``). Header names match columns and
params case-insensitively; ``--column PARAM=HEADER`` maps any other header.

Parsing is strict so that one malformed row never swallows the rows after
it: a quoted field must close on its own line, and a line may not pass
``MAX_LINE_BYTES``. Such a line is a ``Reject`` naming its line, and the
next line is read as a row of its own. Every row of the file is therefore
either a ``Contact`` or a ``Reject``. Header problems (no number column, a
required param without its column, a repeated column, a wrong encoding)
refuse the whole file. Duplicates and the do-not-call list need the
database and are checked by the importer (``autocall.campaign.setup``).
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass, field
from typing import Iterator

from autocall.engine.ir import Program
from autocall.errors import UserError
from autocall.hours import HoursError, check_timezone
from autocall.phone import NumberError, read_number, to_e164
from autocall.sim.caller import parse_keys

NUMBER_COLUMN = "number"
TIMEZONE_COLUMN = "timezone"
SIM_OUTCOME_COLUMN = "sim_outcome"
SIM_KEYS_COLUMN = "sim_keys"
SIM_OUTCOMES = ("answer", "busy", "noanswer", "congestion", "failed", "machine")
# Columns with a meaning of their own (never a param, never exported as a list column).
SPECIAL_COLUMNS = (NUMBER_COLUMN, TIMEZONE_COLUMN, SIM_OUTCOME_COLUMN, SIM_KEYS_COLUMN)
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t"}
MAX_LINE_BYTES = 65_536


class ContactsError(UserError):
    """The contact list cannot be used at all (one line: file, what is wrong, what to do)."""


@dataclass(frozen=True)
class Contact:
    line: int
    number: str
    params: dict[str, str]
    extra: dict[str, str]
    sim_outcome: str = ""
    sim_keys: str = ""
    timezone: str | None = None      # the callee's zone when the number or the timezone column says it


@dataclass(frozen=True)
class Reject:
    line: int
    number: str
    reason: str


@dataclass
class Columns:
    """Where each column of the header goes."""

    header: list[str]
    number: int
    params: dict[str, int] = field(default_factory=dict)       # param name -> column index
    extra: dict[str, int] = field(default_factory=dict)        # other columns, kept for the export
    timezone: int | None = None
    sim_outcome: int | None = None
    sim_keys: int | None = None

    def param_headers(self) -> dict[str, str]:
        """Param name (or number, timezone, sim_outcome, sim_keys) -> the header it is read from (the export's)."""
        special = {NUMBER_COLUMN: self.number, TIMEZONE_COLUMN: self.timezone, SIM_OUTCOME_COLUMN: self.sim_outcome,
                   SIM_KEYS_COLUMN: self.sim_keys}
        return {name: self.header[index] for name, index in (*special.items(), *self.params.items())
                if index is not None}


def parse_delimiter(text: str | None) -> str | None:
    """``--delimiter``: ``,``, ``;``, ``tab`` (or None: detect it)."""
    if text is None or text == "":
        return None
    if text in DELIMITERS or text.lower() in DELIMITERS:
        return DELIMITERS.get(text, DELIMITERS.get(text.lower()))
    raise UserError(f"--delimiter {text!r}: write ',', ';' or 'tab'")


def parse_column_map(items: list[str] | None) -> dict[str, str]:
    """``--column PARAM=HEADER`` (repeatable) -> ``{param: header}``."""
    mapping: dict[str, str] = {}
    for item in items or []:
        param, sep, header = item.partition("=")
        if not sep or not param.strip() or not header.strip():
            raise UserError(f"--column {item!r}: write PARAM=HEADER, e.g. --column number=Numero")
        mapping[param.strip()] = header.strip()
    return mapping


def split_line(text: str, delimiter: str) -> list[str]:
    """One physical line's fields. A quoted field (``"a;b"``, ``""`` for a quote) must close on the line:
    ``QuoteError`` otherwise. A quote inside an unquoted field is kept as it is."""
    if '"' not in text:
        return text.split(delimiter)
    fields: list[str] = []
    index, end = 0, len(text)
    while True:
        if index < end and text[index] == '"':
            opened = index
            parts: list[str] = []
            index += 1
            while True:
                close = text.find('"', index)
                if close < 0:
                    raise QuoteError(len(fields) + 1, opened + 1)
                parts.append(text[index:close])
                if close + 1 < end and text[close + 1] == '"':
                    parts.append('"')
                    index = close + 2
                    continue
                index = close + 1
                break
            stop = text.find(delimiter, index)
            stop = end if stop < 0 else stop
            parts.append(text[index:stop])          # anything after the closing quote, kept (spreadsheets' way)
            fields.append("".join(parts))
        else:
            stop = text.find(delimiter, index)
            stop = end if stop < 0 else stop
            fields.append(text[index:stop])
        if stop >= end:
            return fields
        index = stop + len(delimiter)


class QuoteError(ValueError):
    def __init__(self, field_number: int, column: int) -> None:
        super().__init__(f"field {field_number}: the quote at column {column} is not closed on this line")


def detect_delimiter(header_line: str) -> str:
    """The delimiter the header line uses most (outside quotes): ``,``, ``;`` or a tab; ``,`` by default."""
    outside, quoted = [], False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted:
            outside.append(char)
    text = "".join(outside)
    counts = {delimiter: text.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class ContactReader:
    """``ContactReader(path, program)`` checks the header at once; iterate ``rows()`` for Contacts and Rejects.

    After the iteration: ``sha256`` (of the file's bytes), ``rows_read``,
    ``blank_lines``. ``country`` (``IT``) reads national numbers;
    ``column_map`` is ``--column``; ``delimiter`` None detects it.
    """

    def __init__(self, path: str, program: Program, *, delimiter: str | None = None,
                 column_map: dict[str, str] | None = None, country: str | None = None) -> None:
        self.path = path
        self.program = program
        self.country = country
        self.column_map = dict(column_map or {})
        self.rows_read = 0
        self.blank_lines = 0
        self._hash = hashlib.sha256()
        try:
            self._handle = open(path, "rb")
        except OSError as exc:
            raise _unreadable(path, "contact list", exc) from None
        self._lines = self._decoded_lines()
        try:
            header_line = self._header_line()
            self.delimiter = delimiter or detect_delimiter(header_line)
            self.columns = self._columns(self._header(header_line))
        except BaseException:
            self.close()
            raise

    # -- header -------------------------------------------------------------------------------------------
    def _header_line(self) -> str:
        for number, text in self._lines:
            if isinstance(text, str):
                return text
            raise ContactsError(f"{self.path}:{number}: the header line is longer than {MAX_LINE_BYTES} bytes")
        raise ContactsError(f"{self.path}: no header line; the first line must name the columns, "
                            f"one of them '{NUMBER_COLUMN}'")

    def _header(self, line: str) -> list[str]:
        try:
            header = [cell.strip() for cell in split_line(line, self.delimiter)]
        except QuoteError as exc:
            raise ContactsError(f"{self.path}:1: the header is not valid CSV ({exc})") from None
        if not any(header):
            raise ContactsError(f"{self.path}: no header line; the first line must name the columns, "
                                f"one of them '{NUMBER_COLUMN}'")
        return header

    def _columns(self, header: list[str]) -> Columns:
        path = self.path
        lowered = [name.lower() for name in header]
        for index, name in enumerate(header):
            if not name:
                raise ContactsError(f"{path}:1: column {index + 1} of the header has no name; name it or remove it")
            if lowered.index(name.lower()) != index:
                raise ContactsError(f"{path}:1: the column '{name}' appears twice in the header; keep one")
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        wanted: dict[str, int] = {}           # param (or number/timezone) -> column, from --column
        for param, name in self.column_map.items():
            if name.lower() not in lowered:
                raise ContactsError(f"{path}: --column {param}={name}: the header has no column '{name}' "
                                    f"(it has: {shown})")
            wanted[param] = lowered.index(name.lower())
        number = wanted.pop(NUMBER_COLUMN, lowered.index(NUMBER_COLUMN) if NUMBER_COLUMN in lowered else None)
        if number is None:
            raise ContactsError(f"{path}: no '{NUMBER_COLUMN}' column (the header has: {shown}); name the column "
                                f"of phone numbers '{NUMBER_COLUMN}' or map it with --column number=HEADER")
        columns = Columns(header=header, number=number)
        taken = {number}

        def special(name: str) -> int | None:
            index = wanted.pop(name, lowered.index(name) if name in lowered else None)
            if index is not None:
                taken.add(index)
            return index
        columns.timezone = special(TIMEZONE_COLUMN)
        columns.sim_outcome = special(SIM_OUTCOME_COLUMN)
        columns.sim_keys = special(SIM_KEYS_COLUMN)
        declared = [p["name"] for p in self.program.params]
        unknown = [param for param in wanted if param not in declared]
        if unknown:
            raise ContactsError(f"{path}: --column {unknown[0]}=...: the script '{self.program.name}' has no param "
                                f"'{unknown[0]}' (its params: {', '.join(declared) or 'none'})")
        for name in declared:
            if name in wanted:
                columns.params[name] = wanted[name]
            elif name.lower() in lowered and name.lower() not in SPECIAL_COLUMNS and \
                    lowered.index(name.lower()) not in taken | set(wanted.values()):
                columns.params[name] = lowered.index(name.lower())
        missing = [name for name in self.program.required_params() if name not in columns.params]
        if missing:
            listed = ", ".join(f"'{name}'" for name in missing)
            raise ContactsError(f"{path}: the script '{self.program.name}' needs the param column(s) {listed}, "
                                f"which the header lacks (it has: {shown}); add them or map them with "
                                f"--column PARAM=HEADER")
        used = set(columns.params.values()) | taken
        columns.extra = {name: index for index, name in enumerate(header) if index not in used}
        return columns

    # -- lines and rows ----------------------------------------------------------------------------------
    def _decoded_lines(self) -> Iterator[tuple[int, str | None]]:
        """``(line number, text)`` per physical line; text None for a line past ``MAX_LINE_BYTES``."""
        number = 0
        read = self._handle.readline
        while True:
            raw = read(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            self._hash.update(raw)
            if number == 1:
                if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise ContactsError(f"{self.path}: the file is UTF-16; save it as UTF-8 "
                                        f"('CSV UTF-8' in spreadsheet programs)")
                if raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):      # skip the rest of the line, still hashing it
                    raw = read(MAX_LINE_BYTES)
                    self._hash.update(raw)
                yield number, None
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ContactsError(
                    f"{self.path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                    f"save the file as UTF-8 ('CSV UTF-8' in spreadsheet programs)") from None
            yield number, text.rstrip("\r\n")

    def rows(self) -> Iterator[Contact | Reject]:
        """Each data row, checked: a Contact, or a Reject saying why the row is skipped."""
        columns = self.columns
        width = len(columns.header)
        required = set(self.program.required_params())
        delimiter = self.delimiter
        try:
            for line, text in self._lines:
                if text is None:
                    self.rows_read += 1
                    yield Reject(line, "", f"the line is longer than {MAX_LINE_BYTES} bytes")
                    continue
                try:
                    row = split_line(text, delimiter)
                except QuoteError as exc:
                    self.rows_read += 1
                    naive = text.split(delimiter)
                    number = naive[columns.number].strip().strip('"') if columns.number < len(naive) else ""
                    yield Reject(line, number, f"not valid CSV: {exc} (a cell may not span lines)")
                    continue
                if not any(cell.strip() for cell in row):
                    self.blank_lines += 1
                    continue
                self.rows_read += 1
                yield self._check(row, line, width, required)
        finally:
            self.close()

    def _check(self, row: list[str], line: int, width: int, required: set[str]) -> Contact | Reject:
        columns = self.columns
        raw_number = row[columns.number].strip() if columns.number < len(row) else ""
        if len(row) > width and any(c.strip() for c in row[width:]):
            return Reject(line, raw_number, f"has {len(row)} fields where the header has {width}")
        if len(row) < width:                      # missing trailing columns are empty cells
            row = row + [""] * (width - len(row))
        if not raw_number:
            return Reject(line, raw_number, "no number")
        try:
            number, number_zone = read_number(raw_number, self.country)
        except NumberError as exc:
            return Reject(line, raw_number, f"number {raw_number!r}: {exc}")
        params: dict[str, str] = {}
        for name, index in columns.params.items():
            value = row[index].strip()
            if value:
                params[name] = value
            elif name in required:
                return Reject(line, raw_number, f"the param '{name}' is empty (the script requires it)")
        extra = {name: row[index] for name, index in columns.extra.items()}
        sim_outcome = _cell(row, columns.sim_outcome).lower()
        if sim_outcome and sim_outcome not in SIM_OUTCOMES:
            return Reject(line, raw_number, f"sim_outcome {sim_outcome!r} is not one of {', '.join(SIM_OUTCOMES)}")
        sim_keys = _cell(row, columns.sim_keys)
        if sim_keys:
            try:
                parse_keys(sim_keys)
            except UserError as exc:
                return Reject(line, raw_number, f"sim_keys: {str(exc).removeprefix('--keys: ')}")
        zone = _cell(row, columns.timezone)
        if zone:
            try:
                check_timezone(zone)
            except HoursError as exc:
                return Reject(line, raw_number, f"timezone {zone!r}: {exc}")
        return Contact(line, number, params, extra, sim_outcome, sim_keys, zone or number_zone)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        self._handle.close()


def _cell(row: list[str], index: int | None) -> str:
    """The stripped cell of an optional column ("" when the list has no such column)."""
    return row[index].strip() if index is not None else ""


def file_sha256(path: str) -> str:
    """The digest ``ContactReader`` computes, without parsing (to tell whether a list changed)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 16), b""):
                digest.update(chunk)
    except OSError as exc:
        raise _unreadable(path, "contact list", exc) from None
    return digest.hexdigest()


def read_dnc_file(path: str, country: str | None = None) -> tuple[list[str], list[tuple[int, str, str]]]:
    """A do-not-call file: one number per line, ``#`` comments and blank lines allowed.

    Returns the numbers in E.164 and the bad lines ``(line, text, reason)``.
    """
    numbers: list[str] = []
    bad: list[tuple[int, str, str]] = []
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for line, text in enumerate(handle, start=1):
                entry = text.split("#", 1)[0].strip().split(",")[0].strip()
                if not entry:
                    continue
                try:
                    numbers.append(to_e164(entry, country))
                except NumberError as exc:
                    bad.append((line, entry, str(exc)))
    except UnicodeDecodeError:
        raise ContactsError(f"{path}: the do-not-call list is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise _unreadable(path, "do-not-call list", exc) from None
    return numbers, bad


def _unreadable(path: str, what: str, exc: OSError) -> ContactsError:
    if isinstance(exc, FileNotFoundError):
        return ContactsError(f"{path}: {what} not found")
    if isinstance(exc, IsADirectoryError):
        return ContactsError(f"{path}: is a folder; give the {what} file")
    return ContactsError(f"{path}: cannot read the {what} ({exc.strerror or exc})")
