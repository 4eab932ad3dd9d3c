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
    assert view.figures["elapsed"].text() == "2 h 00 min"
    assert "in 3 h 00 min" in view.figures["eta"].text()


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
