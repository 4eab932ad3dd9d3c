"""Instants as integer microseconds since the epoch (UTC), the way the store keeps them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    """A datetime as microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(value: int | None) -> datetime | None:
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=int(value))


def now_us() -> int:
    return to_us(datetime.now(UTC))


def us_column(values) -> pd.Series | pd.DatetimeIndex:
    """Integer microseconds (None for open ends) as `datetime64[ns, UTC]`, None -> NaT."""
    array = np.asarray(
        [np.iinfo(np.int64).min if v is None else v for v in values], dtype=np.int64
    )
    nat = array == np.iinfo(np.int64).min
    ns = array * 1000
    ns[nat] = np.iinfo(np.int64).min  # NaT's own bit pattern
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")
