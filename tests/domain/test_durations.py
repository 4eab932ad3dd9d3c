"""Durations read the same in the window and on the command line."""

import pytest

from fleetview.domain.durations import short_duration, time_until


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (0, "0 s"), (45.4, "45 s"), (200, "3 min 20 s"), (180, "3 min"),
    (2400, "40 min"), (2410, "40 min"), (7500, "2 h 5 min"), (7200, "2 h"),
    (86400 * 9 + 3600 * 14, "9 d 14 h"), (86400 * 2, "2 d"), (float("nan"), "—"),
])
def test_durations_read_as_people_say_them(seconds, text):
    assert short_duration(seconds) == text


def test_the_command_line_says_missing_with_a_plain_dash():
    assert short_duration(None, missing="-") == "-"


def test_a_time_to_come_never_reads_in_zero_minutes():
    assert time_until(20) == "in under a minute"
    assert time_until(2400) == "in 40 min"
    assert time_until(None) == "—"
