"""Learning-curve figures: one distinguishable line per configuration."""

from __future__ import annotations

from pathlib import Path

from framework.reporting.figures import Series
from framework.reporting.figures import curves


def test_more_configurations_than_colours_still_get_distinct_lines(tmp_path: Path) -> None:
    series = [Series(f"config {i}", {0: {10: float(i), 20: float(i) / 2}}) for i in range(14)]
    figure = curves("learning-curves", "val loss", "val_loss", series, tmp_path)
    lines = [trace for trace in figure.plotly.data if trace.mode == "lines+markers"]
    assert len(lines) == 14
    assert len({(trace.line.color, trace.line.dash) for trace in lines}) == 14
    assert figure.png is not None and figure.png.exists()
