"""Contact lists: a streaming CSV reader that checks the header against the script and each row on its own.

The file is read line by line (never loaded whole), decoded as UTF-8 (a BOM
is allowed) and hashed as it goes, so that a resumed campaign can tell
whether the list changed. Header problems (no ``number`` column, a required
param without its column, a repeated column, a wrong encoding) refuse the
whole file; a bad row is yielded as a ``Reject`` naming its line and reason,
and the caller lists and skips it. Duplicates and the do-not-call list need
the database and are checked by the importer (``autocall.campaign.setup``).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from dataclasses import dataclass, field
from typing import Iterator

from autocall.engine.ir import Program
from autocall.errors import UserError
from autocall.numbers import NumberError, normalise_number
from autocall.sim.caller import parse_keys

NUMBER_COLUMN = "number"
SIM_OUTCOME_COLUMN = "sim_outcome"
SIM_KEYS_COLUMN = "sim_keys"
SIM_OUTCOMES = ("answer", "busy", "noanswer", "congestion", "failed", "machine")
SPECIAL_COLUMNS = (NUMBER_COLUMN, SIM_OUTCOME_COLUMN, SIM_KEYS_COLUMN)   # columns with a meaning of their own


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
    sim_outcome: int | None = None
    sim_keys: int | None = None


class ContactReader:
    """``ContactReader(path, program)`` checks the header at once; iterate ``rows()`` for Contacts and Rejects.

    After the iteration: ``sha256`` (of the file's bytes), ``rows_read``,
    ``blank_lines``.
    """

    def __init__(self, path: str, program: Program) -> None:
        self.path = path
        self.program = program
        self.rows_read = 0
        self.blank_lines = 0
        self._hash = hashlib.sha256()
        try:
            self._handle = open(path, "rb")
        except OSError as exc:
            raise _unreadable(path, "contact list", exc) from None
        self._lines = self._decoded_lines()
        self._reader = csv.reader(self._lines, strict=False)
        try:
            self.columns = self._columns(self._header())
        except BaseException:
            self.close()
            raise

    # -- header -------------------------------------------------------------------------------------------
    def _header(self) -> list[str]:
        try:
            header = next(self._reader, None)
        except csv.Error as exc:
            raise ContactsError(f"{self.path}:1: the header is not valid CSV ({exc})") from None
        if header is None or not any(cell.strip() for cell in header):
            raise ContactsError(f"{self.path}: no header line; the first line must name the columns, "
                                f"one of them '{NUMBER_COLUMN}'")
        return [cell.strip() for cell in header]

    def _columns(self, header: list[str]) -> Columns:
        path = self.path
        lowered = [name.lower() for name in header]
        for index, name in enumerate(header):
            if not name:
                raise ContactsError(f"{path}:1: column {index + 1} of the header has no name; name it or remove it")
            if lowered.index(name.lower()) != index:
                raise ContactsError(f"{path}:1: the column '{name}' appears twice in the header; keep one")
        if NUMBER_COLUMN not in lowered:
            shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
            raise ContactsError(f"{path}: no '{NUMBER_COLUMN}' column (the header has: {shown}); "
                                f"name the column of phone numbers '{NUMBER_COLUMN}'")
        columns = Columns(header=header, number=lowered.index(NUMBER_COLUMN))
        if SIM_OUTCOME_COLUMN in lowered:
            columns.sim_outcome = lowered.index(SIM_OUTCOME_COLUMN)
        if SIM_KEYS_COLUMN in lowered:
            columns.sim_keys = lowered.index(SIM_KEYS_COLUMN)
        params = [p["name"] for p in self.program.params]
        for name in params:
            if name in header:
                columns.params[name] = header.index(name)
            elif name.lower() in lowered and lowered.count(name.lower()) == 1 and \
                    name.lower() not in SPECIAL_COLUMNS:
                columns.params[name] = lowered.index(name.lower())
        missing = [name for name in self.program.required_params() if name not in columns.params]
        if missing:
            listed = ", ".join(f"'{name}'" for name in missing)
            raise ContactsError(f"{path}: the script '{self.program.name}' needs the param column(s) {listed}, "
                                f"which the header lacks (it has: {', '.join(header)}); add them")
        used = set(columns.params.values()) | {columns.number, columns.sim_outcome, columns.sim_keys}
        columns.extra = {name: index for index, name in enumerate(header) if index not in used}
        return columns

    # -- lines and rows ----------------------------------------------------------------------------------
    def _decoded_lines(self) -> Iterator[str]:
        decoder_name = "utf-8"
        for number, raw in enumerate(self._handle, start=1):
            self._hash.update(raw)
            if number == 1:
                if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise ContactsError(f"{self.path}: the file is UTF-16; save it as UTF-8 "
                                        f"('CSV UTF-8' in spreadsheet programs)")
                if raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield raw.decode(decoder_name)
            except UnicodeDecodeError as exc:
                raise ContactsError(
                    f"{self.path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                    f"save the file as UTF-8 ('CSV UTF-8' in spreadsheet programs)") from None

    def rows(self) -> Iterator[Contact | Reject]:
        """Each data row, checked: a Contact, or a Reject saying why the row is skipped."""
        columns = self.columns
        width = len(columns.header)
        required = set(self.program.required_params())
        last_line = self._reader.line_num
        try:
            while True:
                try:
                    row = next(self._reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    line, last_line = last_line + 1, self._reader.line_num
                    self.rows_read += 1
                    yield Reject(line, "", f"not valid CSV ({exc})")
                    continue
                line, last_line = last_line + 1, self._reader.line_num
                if not any(cell.strip() for cell in row):
                    self.blank_lines += 1
                    continue
                self.rows_read += 1
                yield self._check(row, line, width, required)
            # Drain the file so the digest covers it all, even when the last lines were blank.
            for _ in self._lines:
                pass
        finally:
            self.close()

    def _check(self, row: list[str], line: int, width: int, required: set[str]) -> Contact | Reject:
        columns = self.columns
        raw_number = row[columns.number].strip() if columns.number < len(row) else ""
        if len(row) != width and not (len(row) > width and not any(c.strip() for c in row[width:])):
            return Reject(line, raw_number, f"has {len(row)} fields where the header has {width}")
        try:
            number = normalise_number(raw_number)
        except NumberError as exc:
            return Reject(line, raw_number, f"number {raw_number!r}: {exc}" if raw_number else "no number")
        params: dict[str, str] = {}
        for name, index in columns.params.items():
            value = row[index].strip()
            if value:
                params[name] = value
            elif name in required:
                return Reject(line, raw_number, f"the param '{name}' is empty (the script requires it)")
        extra = {name: row[index] for name, index in columns.extra.items()}
        sim_outcome = row[columns.sim_outcome].strip().lower() if columns.sim_outcome is not None else ""
        if sim_outcome and sim_outcome not in SIM_OUTCOMES:
            return Reject(line, raw_number, f"sim_outcome {sim_outcome!r} is not one of {', '.join(SIM_OUTCOMES)}")
        sim_keys = row[columns.sim_keys].strip() if columns.sim_keys is not None else ""
        if sim_keys:
            try:
                parse_keys(sim_keys)
            except UserError as exc:
                return Reject(line, raw_number, f"sim_keys: {str(exc).removeprefix('--keys: ')}")
        return Contact(line, number, params, extra, sim_outcome, sim_keys)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        self._handle.close()


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


def read_dnc_file(path: str) -> tuple[list[str], list[tuple[int, str, str]]]:
    """A do-not-call file: one number per line, ``#`` comments and blank lines allowed.

    Returns the normalised numbers and the bad lines ``(line, text, reason)``.
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
                    numbers.append(normalise_number(entry))
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
