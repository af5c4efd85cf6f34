"""The warning for a best checkpoint reached before any dropout was applied (late dropout)."""

from __future__ import annotations

from framework.training.run import undropped_before_best


def history(rates: list[float]) -> list[dict[str, float]]:
    return [{"step": 100 * (i + 1), "val_loss": 1.0, "rate/residual": p, "rate/attention": p}
            for i, p in enumerate(rates)]


def test_late_dropout_whose_best_checkpoint_precedes_its_cutoff_is_flagged() -> None:
    warning = undropped_before_best(history([0.0, 0.0, 0.1, 0.1]), best_step=200)
    assert warning is not None
    assert "up to the best checkpoint (step 200)" in warning and "final_val_*" in warning


def test_no_warning_when_dropout_ran_before_the_best_step_or_never() -> None:
    assert undropped_before_best(history([0.0, 0.0, 0.1, 0.1]), best_step=300) is None
    assert undropped_before_best(history([0.1, 0.1, 0.0, 0.0]), best_step=100) is None  # early
    assert undropped_before_best(history([0.0, 0.0, 0.0, 0.0]), best_step=200) is None  # p = 0
    assert undropped_before_best(history([0.0, 0.0, 0.1, 0.1]), best_step=400) is None  # last
    without_rates = [{"step": 100, "val_loss": 1.0}, {"step": 200, "val_loss": 2.0}]
    assert undropped_before_best(without_rates, best_step=100) is None
