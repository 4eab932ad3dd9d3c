"""Rollout progress read from version share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from fleetview.ui.colors import VersionColors
from fleetview.ui.rollout import RolloutView, rollout_progress

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def share(rows: list[tuple[int, int]]) -> pd.DataFrame:
    index = pd.DatetimeIndex([T0 + timedelta(hours=h) for h in range(len(rows))], name="time")
    return pd.DataFrame(rows, columns=["1.0", "1.1"], index=index)


def test_progress_rate_and_estimate():
    # 10 instances; 1.1 appears after hour 1 and gains 2 an hour.
    s = share([(10, 0), (10, 0), (8, 2), (6, 4)])
    now = T0 + timedelta(hours=3)
    p = rollout_progress(s, "1.1", now)
    assert (p.total, p.done, round(p.percent)) == (10, 4, 40)
    assert p.started == T0 + timedelta(hours=1)
    assert p.rate_per_hour == 2.0
    assert p.eta == now + timedelta(hours=3)
    assert p.finished is None
    assert p.elapsed(now) == timedelta(hours=2)


def test_finished_rollout():
    s = share([(4, 0), (2, 2), (0, 4), (0, 4)])
    p = rollout_progress(s, "1.1", T0 + timedelta(hours=3))
    assert p.percent == 100
    assert p.finished == T0 + timedelta(hours=2)
    assert p.eta is None


def test_not_started_and_no_data():
    assert rollout_progress(share([(4, 0), (4, 0)]), "1.1", T0).done == 0
    assert rollout_progress(share([(4, 0)]), "2.0", T0).started is None
    assert rollout_progress(pd.DataFrame(), "1.1", T0).total == 0


def test_view_shows_the_figures(qtbot):
    view = RolloutView(VersionColors(["1.0", "1.1"]))
    qtbot.addWidget(view)
    now = T0 + timedelta(hours=3)
    view.set_share("web", share([(10, 0), (10, 0), (8, 2), (6, 4)]), "1.1", now)
    assert view.figures["desired"].text() == "1.1"
    assert view.figures["done"].text() == "40%  (4/10)"
    assert view.figures["elapsed"].text() == "2 h"
    assert "(in 3 h)" in view.figures["eta"].text()


def test_view_redraws_for_another_group(qtbot):
    view = RolloutView(VersionColors(["1.0", "1.1"]))
    qtbot.addWidget(view)
    now = T0 + timedelta(hours=3)
    view.set_share("web", share([(10, 0), (8, 2), (6, 4), (6, 4)]), "1.1", now)
    drawn = len(view._items)
    view.set_share("api", share([(4, 0), (2, 2), (0, 4), (0, 4)]), "1.1", now)
    assert len(view._items) == drawn
    assert view.figures["done"].text() == "100%  (4/4)"
    view.clear()
    assert view._items == [] and view.figures["done"].text() == "—"


def minutes(rows: list[tuple[int, int]], start: datetime = T0) -> pd.DataFrame:
    index = pd.DatetimeIndex([start + timedelta(minutes=m) for m in range(len(rows))],
                             name="time")
    return pd.DataFrame(rows, columns=["1.0", "1.1"], index=index)


def test_surge_instances_count_for_nothing():
    # A group of 4 surges to 6 while it replaces: 3 on the new version is 3 of 4, not of 6.
    s = share([(4, 0), (4, 2), (3, 3)])
    p = rollout_progress(s, "1.1", T0 + timedelta(hours=2), target=4)
    assert (p.done, p.total) == (3, 4)
    done = rollout_progress(share([(4, 0), (2, 4), (0, 5)]), "1.1", T0 + timedelta(hours=2),
                            target=4)
    assert (done.done, done.total, done.percent) == (4, 4, 100)
    assert done.finished == T0 + timedelta(hours=1)


def test_a_rollback_in_flight_estimates_from_when_the_group_changed():
    # 1.1 was half the group before the group began wanting it back (a rollback at hour 2):
    # 3 of 6 then, 5 of 6 an hour later, so one more takes half an hour.
    s = share([(0, 6), (3, 3), (3, 3), (1, 5)])
    now = T0 + timedelta(hours=3)
    p = rollout_progress(s, "1.1", now, target=6, since=T0 + timedelta(hours=2))
    assert p.started == T0 + timedelta(hours=2)
    assert p.rate_per_hour == 2.0
    assert p.eta == now + timedelta(minutes=30)


def test_the_axis_fits_a_three_minute_rollout(qtbot):
    view = RolloutView(VersionColors(["1.0", "1.1"]))
    qtbot.addWidget(view)
    # Two hours of history; the rollout ran from minute 100 to 103.
    rows = [(4, 0)] * 100 + [(3, 1), (2, 2), (0, 4)] + [(0, 4)] * 17
    now = T0 + timedelta(minutes=len(rows) - 1)
    view.set_share("web", minutes(rows), "1.1", now, target=4,
                   since=T0 + timedelta(minutes=99))
    lo, hi = view.x_range
    assert hi - lo < 15 * 60, "the chart shows the rollout, not the whole history"
    assert lo <= (T0 + timedelta(minutes=99)).timestamp()
    assert hi >= (T0 + timedelta(minutes=102)).timestamp()
    assert view.figures["elapsed"].text() == "3 min"


def test_nothing_selected_says_so_instead_of_empty_axes(qtbot):
    view = RolloutView(VersionColors())
    qtbot.addWidget(view)
    view.show()
    assert view.empty.isVisible() and "Select a group" in view.empty.text()
    assert not view.plot.isVisible()
    view.set_share("web", share([(4, 0), (2, 2)]), "1.1", T0 + timedelta(hours=1))
    assert view.plot.isVisible() and not view.empty.isVisible()
    view.set_share("gone", pd.DataFrame(), "1.1", T0)
    assert view.empty.isVisible() and not view.plot.isVisible()
