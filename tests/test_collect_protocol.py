"""The collector's event protocol: what `fleetview collect` prints is what the window reads."""

from __future__ import annotations

import io
import json

import pytest

from fleetview import collect_protocol as protocol
from fleetview.collect_protocol import (
    CollectorStarted,
    EventStream,
    PollFinished,
    PollStarted,
    ProtocolError,
    RegionFailure,
    ScopeError,
    StoreError,
    parse_line,
)

EVERY_EVENT = [
    CollectorStarted(scopes=("prod", "lab"), pid=42, store="sqlite:///h.db", interval_s=60.0,
                     once=False),
    PollStarted(scope="prod", provider="aws"),
    PollFinished(scope="prod", provider="aws", ok=False, error=None, instances=120, groups=3,
                 api_calls=9, duration_s=2.5, opened=1, closed=0, unchanged=119, gone=0,
                 region_errors=(RegionFailure("eu-west-1", "throttled"),)),
    ScopeError(scope="lab", provider="gcp", region=None, message="403 Forbidden"),
    StoreError(message="database is locked", pending=2, retry_in_s=5, fatal=False),
    protocol.StoreOk(pending=0),
    protocol.PollsDropped(scope="prod", dropped=1, message="dropped the oldest poll"),
    protocol.BackfillFinished(scope="prod", ok=True, spans=12, group_spans=3, api_calls=9,
                              message="rebuilt 12 instance spans"),
    protocol.CollectorStopped(reason="stopped", unwritten=0),
]


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: e.EVENT)
def test_every_event_survives_the_pipe(event):
    out = io.StringIO()
    EventStream(out, clock=lambda: "2026-01-01T00:00:00.000Z").emit(event)
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    back = parse_line(line)
    assert type(back) is type(event)
    assert back == type(event)(**{**vars(event), "time": "2026-01-01T00:00:00.000Z"})


def test_the_wire_format_is_the_collectors():
    """The keys a collector has always written, so older readers and scripts still work."""
    out = io.StringIO()
    EventStream(out).emit(EVERY_EVENT[2])
    data = json.loads(out.getvalue())
    assert list(data)[:2] == ["event", "time"]
    assert data["event"] == "poll_finished" and data["time"].endswith("Z")
    assert set(data) == {"event", "time", "scope", "provider", "ok", "error", "instances",
                         "groups", "api_calls", "duration_s", "opened", "closed", "unchanged",
                         "gone", "region_errors"}
    assert data["region_errors"] == [{"region": "eu-west-1", "message": "throttled"}]
    assert protocol.EVENTS == ("collector_started", "poll_started", "poll_finished",
                               "scope_error", "store_error", "store_ok", "polls_dropped",
                               "backfill_finished", "collector_stopped")


def test_a_sparse_line_gets_defaults_and_unknown_fields_are_ignored():
    event = parse_line('{"event": "poll_finished", "scope": "edge", "ok": false, '
                       '"instances": 3, "from_the_future": [1, 2]}')
    assert event == PollFinished(scope="edge", ok=False, instances=3)
    assert event.summary == "3 instances"
    assert parse_line('{"event": "collector_started"}') == CollectorStarted()


def test_error_is_read_where_message_is_missing():
    event = parse_line('{"event": "scope_error", "scope": "prod", "region": "eu-west-1", '
                       '"error": "throttled; try again"}')
    assert event.message == "throttled; try again" and event.region == "eu-west-1"


@pytest.mark.parametrize(("line", "says"), [
    ("Traceback (most recent call last):", "not a JSON line: Traceback"),
    ("[1, 2]", "must be a JSON object"),
    ('{"scope": "prod"}', 'without an "event" name'),
    ('{"event": "poll_exploded", "scope": "prod"}',
     "unknown collector event 'poll_exploded'; the events are: collector_started"),
    ('{"event": "poll_started"}', "poll_started event without 'scope'"),
    ('{"event": "poll_finished", "scope": "prod", "instances": "three"}',
     "poll_finished event: 'instances' must be an integer, not 'three'"),
    ('{"event": "poll_finished", "scope": "prod", "ok": "yes"}',
     "'ok' must be true or false"),
    ('{"event": "poll_finished", "scope": "prod", "region_errors": ["eu-west-1"]}',
     "each region error must be an object"),
    ('{"event": "collector_started", "scopes": "prod"}', "'scopes' must be a list of strings"),
    ('{"event": "store_error", "fatal": 1}', "'fatal' must be true or false"),
])
def test_a_bad_line_is_refused_saying_why(line, says):
    with pytest.raises(ProtocolError) as refused:
        parse_line(line)
    assert says in str(refused.value)


def test_a_long_bad_line_is_cut_in_the_message():
    with pytest.raises(ProtocolError) as refused:
        parse_line("x" * 5000)
    assert len(str(refused.value)) < 300


def test_the_stream_outlives_its_reader():
    class Gone(io.StringIO):
        def write(self, _text):
            raise BrokenPipeError

    EventStream(Gone()).emit(PollStarted(scope="prod"))  # no error: the collector goes on
