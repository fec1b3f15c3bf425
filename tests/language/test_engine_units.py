"""Direct tests of the engine's small parts: the menu key matcher, value comparison, and ``hours`` across
daylight-saving changes (the semantics tests reach them only through whole calls)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from autocall.engine import values as V
from autocall.engine.keys import INVALID, MATCH, MORE, KeyMatcher
from autocall.hours import parse_schedule


# -- the key matcher --------------------------------------------------------------------------------

def matcher(*choices: str) -> KeyMatcher:
    keys = frozenset(choices)
    return KeyMatcher(keys, KeyMatcher.prefixes_of(keys))


def test_prefixes_are_every_proper_prefix_of_every_choice():
    assert KeyMatcher.prefixes_of({"1", "101", "*9"}) == {"1", "10", "*"}


def test_a_choice_no_longer_choice_begins_with_matches_at_once():
    m = matcher("1", "2")
    assert m.feed("2") is MATCH and m.keys == "2"


def test_a_key_that_begins_no_choice_is_invalid_at_once():
    m = matcher("1", "23")
    assert m.feed("3") is INVALID and m.keys == "3"
    m = matcher("1", "23")
    assert m.feed("2") is MORE and m.feed("4") is INVALID and m.keys == "24"


def test_a_choice_that_begins_a_longer_one_waits_then_expires_into_a_match():
    m = matcher("1", "10", "101")
    assert m.feed("1") is MORE and m.expire() is MATCH and m.keys == "1"
    m = matcher("1", "10", "101")
    assert (m.feed("1"), m.feed("0"), m.feed("1")) == (MORE, MORE, MATCH) and m.keys == "101"


def test_expiring_keys_that_are_only_a_prefix_is_invalid():
    m = matcher("12", "13")
    assert m.feed("1") is MORE and m.expire() is INVALID


# -- value comparison ------------------------------------------------------------------------------

@pytest.mark.parametrize("op, left, right, expected", [
    ("==", 5, "5", 1), ("==", "05", 5, 1), ("==", "05", "5", 0),        # a number meets digits: numbers
    ("<", 9, "10", 1), ("<", "9", "10", 0),                             # two texts compare as text
    ("==", "", 0, 0), ("!=", "abc", 1, 1), (">=", "b", "a", 1),
    ("<=", 3, 3, 1), (">", -1, "0", 0),
])
def test_compare_numbers_digit_strings_and_texts(op, left, right, expected):
    assert V.compare(op, left, right) == expected


def test_comparisons_give_one_or_zero_and_truthiness_is_not_zero_not_empty():
    assert {V.compare("==", 1, 1), V.compare("==", 1, 2)} == {0, 1}
    assert [V.truthy(v) for v in (0, "", 1, "0", "x")] == [False, False, True, True, True]


# -- hours across daylight-saving changes --------------------------------------------------------------

@pytest.mark.parametrize("zone, change_day", [
    ("Europe/Rome", datetime(2026, 3, 29)),          # clocks go 02:00 -> 03:00 (CET -> CEST)
    ("Europe/Rome", datetime(2026, 10, 25)),         # clocks go 03:00 -> 02:00
    ("America/New_York", datetime(2026, 3, 8)),      # 02:00 -> 03:00 (EST -> EDT)
    ("America/New_York", datetime(2026, 11, 1)),     # 02:00 -> 01:00
])
def test_hours_follow_local_time_on_both_sides_of_a_daylight_saving_change(zone, change_day):
    from zoneinfo import ZoneInfo
    schedule = parse_schedule("mon-sun 09:00-18:00", zone)
    local = ZoneInfo(zone)
    for day in (change_day - timedelta(days=1), change_day, change_day + timedelta(days=1)):
        opening = datetime(day.year, day.month, day.day, 9, 0, tzinfo=local)
        closing = datetime(day.year, day.month, day.day, 18, 0, tzinfo=local)
        assert schedule.contains(opening), opening
        assert not schedule.contains(opening - timedelta(minutes=1)), opening
        assert schedule.contains(closing - timedelta(minutes=1)), closing
        assert not schedule.contains(closing), closing
    # The offset really changed: the same local 09:00 is a different UTC hour on either side.
    before = (change_day - timedelta(days=1)).replace(hour=9, tzinfo=local)
    after = (change_day + timedelta(days=1)).replace(hour=9, tzinfo=local)
    assert before.astimezone(timezone.utc).hour != after.astimezone(timezone.utc).hour


def test_a_window_through_the_skipped_hour_and_the_repeated_hour():
    rome = parse_schedule("sun 01:30-03:30", "Europe/Rome")
    # 29 March 2026: 02:00-03:00 does not exist; 00:45 UTC is 01:45 CET (open), 01:45 UTC is 03:45 CEST.
    assert rome.contains(datetime(2026, 3, 29, 0, 45, tzinfo=timezone.utc))
    assert not rome.contains(datetime(2026, 3, 29, 1, 45, tzinfo=timezone.utc))
    # 25 October 2026: 02:00-03:00 happens twice (00:00-01:00 and 01:00-02:00 UTC): open both times.
    assert rome.contains(datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc))
    assert rome.contains(datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc))
    assert not rome.contains(datetime(2026, 10, 25, 2, 45, tzinfo=timezone.utc))     # 03:45 CET


def test_next_opening_across_a_change_is_local_nine_o_clock():
    new_york = parse_schedule("mon-fri 09:00-17:00", "America/New_York")
    friday_evening = datetime(2026, 3, 6, 23, 0, tzinfo=timezone.utc)           # 18:00 EST, Friday
    opening = new_york.next_opening(friday_evening)
    assert opening is not None
    assert opening.astimezone(timezone.utc) == datetime(2026, 3, 9, 13, 0, tzinfo=timezone.utc)   # 09:00 EDT
