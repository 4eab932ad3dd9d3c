"""Durations read the same in the window and on the command line."""

import pytest

from fleetview.domain.durations import short_duration


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (0, "0 s"), (45.4, "45 s"), (200, "3 min 20 s"), (180, "3 min"),
    (2400, "40 min"), (2410, "40 min"), (7500, "2 h 05 min"),
])
def test_durations_read_as_people_say_them(seconds, text):
    assert short_duration(seconds) == text


def test_the_command_line_says_missing_with_a_plain_dash():
    assert short_duration(None, missing="-") == "-"
