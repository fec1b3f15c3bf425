"""Contact lists and numbers: E.164 through phonenumbers, delimiters, column maps, strict rows, streaming imports."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autocall.campaign.contacts import (Contact, ContactReader, ContactsError, Reject, detect_delimiter,
                                        read_dnc_file, split_line)
from autocall.phone import NumberError, number_timezone, to_e164
from autocall.store import campaigns as store
from autocall.store.calls import add_dnc
from campaign_helpers import contacts, new_campaign

LISTS = Path(__file__).resolve().parent / "lists"
ITALIAN = {"delimiter": None, "columns": ["number=Numero", "name=Nome", "date=Data"], "country": "IT"}


@pytest.mark.parametrize("raw, country, expected", [
    ("333 123 4567", "IT", "+393331234567"),
    ("+39 333 1234567", "IT", "+393331234567"),
    ("0039 333 1234567", "IT", "+393331234567"),
    ("0039 333 1234567", None, "+393331234567"),
    ("+39 (06) 1234-567", None, "+39061234567"),
    ("+1 212 555 0123", "IT", "+12125550123"),
    ("(212) 555-0123", "US", "+12125550123"),
])
def test_numbers_become_e164_with_the_country_for_national_ones(raw, country, expected):
    assert to_e164(raw, country) == expected


@pytest.mark.parametrize("raw, country, why", [
    ("", "IT", "empty"), ("339 12", "IT", "too short for IT"), ("333 123 4567", None, "set --country"),
    ("555-CALL-NOW", None, "not a phone number"), ("39+065551234", "IT", "not a phone number"), ("+39 333 1234567 8888", None, "too long"),
    ("+39 0 12", None, "too short"), ("abc", "IT", "not a phone number"),
])
def test_impossible_numbers_say_why(raw, country, why):
    with pytest.raises(NumberError, match=why):
        to_e164(raw, country)


@given(st.text(alphabet="0123456789 +-.()", max_size=25))
def test_e164_is_idempotent(raw):
    try:
        number = to_e164(raw, "IT")
    except NumberError:
        return
    assert to_e164(number) == number and number.startswith("+") and number[1:].isdigit()


def test_the_callee_time_zone_comes_from_the_number_when_it_decides_it():
    assert number_timezone("+393331234567") == "Europe/Rome"          # Rome and the Vatican keep one clock
    assert number_timezone("+12125550123") == "America/New_York"
    assert number_timezone("+18005550123") is None                    # toll-free: the whole country


@pytest.mark.parametrize("line, delimiter, fields", [
    ('a;"b;c";d', ";", ["a", "b;c", "d"]),
    ('"say ""hi""",x', ",", ['say "hi"', "x"]),
    ('he said ""hi"",x', ",", ['he said ""hi""', "x"]),
    ("a\tb\t", "\t", ["a", "b", ""]),
])
def test_a_line_is_split_strictly(line, delimiter, fields):
    assert split_line(line, delimiter) == fields


def test_the_delimiter_is_found_in_the_header():
    assert detect_delimiter("Numero;Nome;Data") == ";"
    assert detect_delimiter("number\tname") == "\t"
    assert detect_delimiter('number,"a;b;c"') == ","
    assert detect_delimiter("number") == ","


def _reader(tmp_path, text: str | bytes, program, **options):
    path = tmp_path / "c.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return ContactReader(str(path), program, **options)


def test_a_list_without_a_number_column_is_refused_naming_the_columns(tmp_path, program):
    with pytest.raises(ContactsError, match=r"no 'number' column \(the header has: phone, name, date\)"):
        _reader(tmp_path, "phone,name,date\n5551234,Ann,monday\n", program)


def test_missing_param_columns_are_refused_before_any_call(tmp_path, program):
    with pytest.raises(ContactsError, match=r"needs the param column\(s\) 'date', which the header lacks"):
        _reader(tmp_path, "number,name\n5551234,Ann\n", program)


@pytest.mark.parametrize("data, message", [
    ("caf\u00e9,x\n".encode("latin-1").join([b"number,name,date\n5551234,", b""]), r"c.csv:2: not UTF-8"),
    ("number,name,date\n5551234,Ann,monday\n".encode("utf-16"), "UTF-16; save it as UTF-8"),
    (b"", "no header line"),
    (b"number,name,number\n", "appears twice"),
])
def test_unusable_files_are_refused_with_one_line(tmp_path, program, data, message):
    with pytest.raises(ContactsError, match=message) as caught:
        list(_reader(tmp_path, data, program).rows())
    assert "\n" not in str(caught.value)


def test_bad_rows_are_rejected_with_their_line_and_reason_and_good_ones_kept(tmp_path, program):
    text = ("\ufeffNumber,name,date,time,sim_outcome,sim_keys,customer\n"
            "+39 06 5551000,Ann,monday,,,1,c1\n"        # good; empty optional param left to its default
            "\n"                                          # blank: counted, not a row
            "abc,Bob,monday,,,,c2\n"
            ",Cy,monday,,,,c3\n"
            "+39065551001,Di,,,,,c4\n"                   # required param empty
            "+39065551002,Ed,monday,,shouting,,c5\n"
            "+39065551003,Flo,monday,,,1x,c6\n"
            "+39065551004,Gil\n"                         # the required date is missing
            '+39065551005,"Hal\nHalsey",monday,,busy,,c7\n'   # a cell may not span lines: both lines listed
            "+39065551006,Ivo,monday,,,,c8,,\n"           # trailing empty fields are fine
            "+39065551007,Jo,monday\n")                   # missing trailing optional columns are fine
    reader = _reader(tmp_path, text, program)
    items = list(reader.rows())
    good = [item for item in items if isinstance(item, Contact)]
    bad = {item.line: item.reason for item in items if isinstance(item, Reject)}
    assert [(c.line, c.number, c.params, c.extra) for c in good] == [
        (2, "+39065551000", {"name": "Ann", "date": "monday"}, {"customer": "c1"}),
        (12, "+39065551006", {"name": "Ivo", "date": "monday"}, {"customer": "c8"}),
        (13, "+39065551007", {"name": "Jo", "date": "monday"}, {"customer": ""})]
    assert bad == {4: "number 'abc': not a phone number (digits, with + or 00 before a country code)",
                   5: "no number", 6: "the param 'date' is empty (the script requires it)",
                   7: "sim_outcome 'shouting' is not one of answer, busy, noanswer, congestion, failed, machine",
                   8: "sim_keys: 'x' at position 2 is not a key; use 0-9, *, #, w (stay silent) and h (hang up)",
                   9: "the param 'date' is empty (the script requires it)",
                   10: "not valid CSV: field 2: the quote at column 14 is not closed on this line "
                       "(a cell may not span lines)",
                   11: "number 'Halsey\"': not a phone number (digits, with + or 00 before a country code)"}
    assert (reader.rows_read, reader.blank_lines) == (11, 1)


def test_an_excel_export_of_an_italian_office_is_read_as_it_is(db, program, clock):
    """UTF-8 with BOM, ';', CRLF, Numero;Nome;Data, national numbers, one number written three ways."""
    campaign_id, report, _ = new_campaign(db, program, LISTS / "excel_italia.csv", clock.seconds(), **ITALIAN)
    assert (report.rows_read, report.imported, report.rejected) == (7, 4, 3)
    assert report.listed == [
        (4, "+393331234567", "duplicate of line 2 (the same number +393331234567)"),
        (5, "339 12", "number '339 12': too short for IT"),
        (6, "+393331234567", "duplicate of line 2 (the same number +393331234567)")]
    assert [(row["line"], row["number"], row["timezone"]) for row in contacts(db, campaign_id)] == [
        (2, "+393331234567", "Europe/Rome"), (3, "+39061234567", "Europe/Rome"),
        (7, "+390287654321", "Europe/Rome"), (8, "+393457654321", "Europe/Rome")]
    by_line = {row["line"]: row for row in contacts(db, campaign_id)}
    assert by_line[2]["params"] == '{"name": "Mario Rossi", "date": "lunedì"}'
    assert by_line[7]["extra"] == '{"Note": "ufficio; piano 2"}' and by_line[8]["extra"] == '{"Note": ""}'


def test_without_a_country_national_numbers_are_rejected_saying_set_country(db, program, clock):
    _, report, _ = new_campaign(db, program, LISTS / "excel_italia.csv", clock.seconds(),
                                **dict(ITALIAN, country=None))
    assert report.imported == 2                     # +39 06 1234567 and 0039 333... (+39 333... is a duplicate)
    assert all("set --country" in reason for _, number, reason in report.listed if number.startswith(("3", "02")))


def test_the_italian_header_without_column_maps_gets_a_clear_refusal(tmp_path, program):
    with pytest.raises(ContactsError, match=r"no 'number' column \(the header has: Numero, Nome, Data, Note\); "
                                            r".*--column number=HEADER"):
        ContactReader(str(LISTS / "excel_italia.csv"), program, country="IT")


def test_a_stray_quote_rejects_its_own_line_and_loses_no_row_after_it(db, program, clock):
    campaign_id, report, _ = new_campaign(db, program, LISTS / "stray_quote.csv", clock.seconds())
    assert (report.rows_read, report.imported, report.rejected) == (14, 13, 1)
    assert report.listed == [(4, "+39065550002", "not valid CSV: field 2: the quote at column 14 is not closed on "
                                                 "this line (a cell may not span lines)")]
    imported = {row["line"]: row for row in contacts(db, campaign_id)}
    assert sorted(imported) == [2, 3, *range(5, 16)]
    assert imported[14]["params"] == '{"name": "Quoted, fine", "date": "monday"}'


def test_a_tab_list_with_capital_headers_and_short_rows(db, program, clock):
    campaign_id, report, _ = new_campaign(db, program, LISTS / "tabs_capitals.tsv", clock.seconds())
    assert (report.imported, report.rejected) == (3, 0)
    rows = contacts(db, campaign_id)
    assert [row["params"] for row in rows] == ['{"name": "Ada", "date": "monday", "time": "ten"}',
                                               '{"name": "Bea", "date": "tuesday"}',
                                               '{"name": "Ceo", "date": "wednesday"}']
    campaign = store.campaign_by_name(db, "t")
    assert campaign["param_headers"] == {"number": "NUMBER", "name": "NAME", "date": "DATE", "time": "TIME"}


def test_a_given_delimiter_wins_and_a_column_map_to_no_column_is_refused(tmp_path, program):
    reader = _reader(tmp_path, "a,b,c,d;number;name;date\n1,2,3,4;+39065550000;A;B\n", program, delimiter=";")
    [contact] = list(reader.rows())
    assert contact.params == {"name": "A", "date": "B"} and contact.extra == {"a,b,c,d": "1,2,3,4"}
    with pytest.raises(ContactsError, match="--column name=Cognome: the header has no column 'Cognome'"):
        _reader(tmp_path, "number,name,date\n", program, column_map={"name": "Cognome"})
    with pytest.raises(ContactsError, match="has no param 'nome'"):
        _reader(tmp_path, "number,Nome,date\n", program, column_map={"nome": "Nome"})


def test_an_overlong_line_is_rejected_and_the_next_line_read(tmp_path, program):
    text = "number,name,date\n+39065550000," + "x" * 70_000 + ",monday\n+39065550001,B,monday\n"
    items = list(_reader(tmp_path, text, program).rows())
    assert [(type(item).__name__, item.line) for item in items] == [("Reject", 2), ("Contact", 3)]
    assert "longer than 65536 bytes" in items[0].reason


def test_duplicates_and_the_do_not_call_list_compare_e164_forms(db, program, tmp_path, clock):
    path = tmp_path / "dnc.txt"
    path.write_text("# opted out by phone\n0039 06 1234567\n\n345 765 4321  # asked twice\nnot-a-number\n")
    numbers, bad = read_dnc_file(str(path), "IT")
    assert numbers == ["+39061234567", "+393457654321"]
    assert bad == [(5, "not-a-number", "not a phone number (digits, with + or 00 before a country code)")]
    for number in numbers:
        add_dnc(db, number)
    campaign_id, report, _ = new_campaign(db, program, LISTS / "excel_italia.csv", clock.seconds(), **ITALIAN)
    assert (report.imported, report.dnc) == (4, 2)
    states = {row["number"]: (row["status"], row["outcome"]) for row in contacts(db, campaign_id)}
    assert states["+39061234567"] == states["+393457654321"] == ("done", "dnc")


_BIG_IMPORT = """
import resource, sys, time
sys.path.insert(0, sys.argv[3])
from autocall.dsl.compiler import Compiler
from autocall.store.db import connect
from campaign_helpers import SCRIPT, new_campaign
program = Compiler().compile_file(str(SCRIPT)).program
conn = connect(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
_, report, _ = new_campaign(conn, program, sys.argv[1], time.time())
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(report.rows_read, report.imported, report.rejected, len(report.listed), grown)
"""


@pytest.mark.slow
def test_a_list_of_200000_rows_is_streamed_with_bad_rows_listed(tmp_path):
    """Flat memory: importing 200,000 rows grows the process's peak far less than holding them would
    (measured in a process of its own, so other tests' memory cannot hide a growth)."""
    import subprocess
    import sys
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("number;name;date\n")
        for index in range(200_000):
            if index % 1000 == 7:
                handle.write(f'+3906{index:08d};"unclosed;monday\n')
            else:
                handle.write(f"+3906{index:08d};Name {index};monday\n")
    database = tmp_path / "big.db"
    done = subprocess.run([sys.executable, "-c", _BIG_IMPORT, str(path), str(database), str(Path(__file__).parent)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2], check=True)
    rows_read, imported, rejected, listed, grown_kb = (int(x) for x in done.stdout.split())
    assert (rows_read, imported, rejected, listed) == (200_000, 199_800, 200, 50)   # 50 shown, all 200 stored
    import sqlite3
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM campaign_rejects").fetchone()[0] == 200
    assert grown_kb < 30_000, f"the import grew the process by {grown_kb} KB: it must stream"
