"""Every number in the config is finite and bounded, and scope names have a sane length, each
refused with one clear line (issue #19, "No poll is lost in silence")."""

from __future__ import annotations

import pytest

from fleetview.config import ConfigError, parse_config

AWS = '[[aws]]\nname = "{name}"\nregions = ["us-east-1"]\n'


@pytest.mark.parametrize("text, key, words", [
    ("[store]\nkeep_days = 1000000000\n", "store.keep_days", "from 1 to 36500"),
    ("[store]\nkeep_days = 0\n", "store.keep_days", "from 1 to 36500"),
    ("[poll]\ninterval_s = nan\n", "poll.interval_s", "at most 86400"),
    ("[poll]\ninterval_s = inf\n", "poll.interval_s", "at most 86400"),
    ("[poll]\ninterval_s = 1e308\n", "poll.interval_s", "at most 86400"),
    ("[poll]\ninterval_s = -inf\n", "poll.interval_s", "at least 5"),
    ("[poll]\ninterval_s = 60\njitter_s = 1e9\n", "poll.jitter_s", "half of poll.interval_s"),
    ("[poll]\ninterval_s = 60\njitter_s = nan\n", "poll.jitter_s", "from 0"),
    ("[poll]\ninterval_s = 60\njitter_s = inf\n", "poll.jitter_s", "from 0"),
    ("[poll]\ninterval_s = 60\njitter_s = -1\n", "poll.jitter_s", "from 0"),
    (AWS.format(name="s" * 200), "aws[0].name", "200 characters long"),
])
def test_out_of_bounds_values_are_refused_with_one_clear_line(text, key, words):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "fleet.toml")
    message = str(info.value)
    assert key in message and words in message, message
    assert "\n" not in message


@pytest.mark.parametrize("text", [
    "[store]\nkeep_days = 36500\n",
    "[poll]\ninterval_s = 86400\njitter_s = 43200\n",
    "[poll]\ninterval_s = 5\njitter_s = 0\n",
    AWS.format(name="s" * 64),
])
def test_values_at_the_bounds_are_accepted(text):
    parse_config(text, "fleet.toml")
