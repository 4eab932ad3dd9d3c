"""Benchmarks: each `bench_<name>.py` module defines `run(size) -> list[Figure]`."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure, with the same-run baseline it is compared with, if any.

    `ratio` is value / baseline; `target` says what the figure should meet (for the report,
    never asserted: a benchmark prints, a test asserts behaviour).
    """

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    target: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def line(self) -> str:
        text = f"{self.name}: {self.value:.4g} {self.unit}"
        if self.baseline is not None:
            text += f" (baseline {self.baseline_name or ''}: {self.baseline:.4g} {self.unit}"
            text += f", ratio {self.ratio:.3g})" if self.ratio is not None else ")"
        if self.target:
            text += f" [target: {self.target}]"
        return text

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}
