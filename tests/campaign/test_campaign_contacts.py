"""Contact lists and numbers: normalisation, header checks, bad rows listed and skipped, streaming imports."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autocall.campaign.contacts import Contact, ContactReader, ContactsError, Reject, read_dnc_file
from autocall.numbers import NumberError, normalise_number
from autocall.store import campaigns as store
from autocall.store.calls import add_dnc
from campaign_helpers import contacts, new_campaign, write_csv


@pytest.mark.parametrize("raw, expected", [
    ("+39 06 555-1234", "+39065551234"),
    ("0039 (06) 555.1234", "+39065551234"),
    ("  5551234 ", "5551234"),
    ("(555) 123-4567", "5551234567"),
    ("101", "101"),
    ("+1 202 555 0123", "+12025550123"),
])
def test_numbers_are_normalised_to_plus_and_digits(raw, expected):
    assert normalise_number(raw) == expected


@pytest.mark.parametrize("raw, why", [
    ("", "empty"), ("12", "too short"), ("+1234567890123456", "too long"), ("555-CALL-NOW", "not a phone number"),
    ("39+065551234", r"\+ that is not at the start"), ("٣٣٣٣٣", "not a phone number"), ("00", "too short"),
])
def test_bad_numbers_say_what_is_wrong(raw, why):
    with pytest.raises(NumberError, match=why):
        normalise_number(raw)


@given(st.text(alphabet="0123456789 +-.()", max_size=25))
def test_normalising_is_idempotent_and_yields_plus_and_digits_only(raw):
    try:
        number = normalise_number(raw)
    except NumberError:
        return
    assert normalise_number(number) == number
    assert number.lstrip("+").isdigit() and 3 <= len(number.lstrip("+")) <= 15


def _reader(tmp_path, text: str | bytes, program):
    path = tmp_path / "c.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return ContactReader(str(path), program)


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
            "5551001,Di,,,,,c4\n"                         # required param empty
            "5551002,Ed,monday,,shouting,,c5\n"
            "5551003,Flo,monday,,,1x,c6\n"
            "5551004,Gil,monday\n"                        # too few fields
            '5551005,"Hal\nHalsey",monday,,busy,,c7\n')   # a quoted field over two lines
    reader = _reader(tmp_path, text, program)
    items = list(reader.rows())
    good = [item for item in items if isinstance(item, Contact)]
    bad = {item.line: item.reason for item in items if isinstance(item, Reject)}
    assert [(c.line, c.number, c.params, c.extra) for c in good] == [
        (2, "+39065551000", {"name": "Ann", "date": "monday"}, {"customer": "c1"}),
        (10, "5551005", {"name": "Hal\nHalsey", "date": "monday"}, {"customer": "c7"})]
    assert good[1].sim_outcome == "busy"
    assert bad == {4: "number 'abc': not a phone number ('a' is not allowed; use digits, a leading + or 00)",
                   5: "no number", 6: "the param 'date' is empty (the script requires it)",
                   7: "sim_outcome 'shouting' is not one of answer, busy, noanswer, congestion, failed, machine",
                   8: "sim_keys: 'x' at position 2 is not a key; use 0-9, *, #, w (stay silent) and h (hang up)",
                   9: "has 3 fields where the header has 7"}
    assert (reader.rows_read, reader.blank_lines) == (8, 1)


def test_duplicates_after_normalisation_and_dnc_numbers_are_reported_not_dropped(db, program, tmp_path, clock):
    add_dnc(db, "+39065551002")
    rows = [["+39 06 5551000", "A", "mon", "", ""], ["0039065551000", "B", "mon", "", ""],
            ["+39 06 5551002", "C", "mon", "", ""], ["5551003", "D", "mon", "", ""]]
    campaign_id, report, _ = new_campaign(db, program, write_csv(tmp_path / "c.csv", rows), clock.seconds())
    assert (report.imported, report.rejected, report.dnc) == (3, 1, 1)
    assert report.listed == [(3, "+39065551000", "duplicate of line 2 (same number +39065551000 after normalisation)")]
    rejected = [tuple(row) for row in store.rejects(db, campaign_id)]
    assert rejected == [(3, "+39065551000", "duplicate of line 2 (same number +39065551000 after normalisation)")]
    states = {row["number"]: (row["status"], row["outcome"]) for row in contacts(db, campaign_id)}
    assert states["+39065551002"] == ("done", "dnc")


def test_the_dnc_file_reader_normalises_and_lists_bad_lines(tmp_path):
    path = tmp_path / "dnc.txt"
    path.write_text("# opted out by phone\n+39 06 5551000\n\n0039 06 5551001  # asked twice\nnot-a-number\n")
    numbers, bad = read_dnc_file(str(path))
    assert numbers == ["+39065551000", "+39065551001"]
    assert bad == [(5, "not-a-number", "not a phone number ('n' is not allowed; use digits, a leading + or 00)")]


@pytest.mark.one_engine
def test_a_list_of_100000_rows_is_streamed_with_bad_rows_listed(db, program, tmp_path, clock):
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("number,name,date\n")
        for index in range(100_000):
            number = "oops" if index % 1000 == 7 else f"+3906{index:08d}"
            handle.write(f"{number},Name {index},monday\n")
    tracemalloc.start()
    campaign_id, report, _ = new_campaign(db, program, path, clock.seconds())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (report.rows_read, report.imported, report.rejected) == (100_000, 99_900, 100)
    assert len(report.listed) == 50                       # the first 50 shown, all 100 stored
    assert db.execute("SELECT COUNT(*) FROM campaign_rejects").fetchone()[0] == 100
    assert peak < 20_000_000, f"the import held {peak} bytes: it must stream"
