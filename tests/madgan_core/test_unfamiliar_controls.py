"""Re-calibrating on healthy controls the model reconstructs worse than its previous ones warns."""

import numpy as np

from madgan_core.model.reference import HealthyReference
from madgan_core.scoring.calibrate import unfamiliar_controls


def _reference(prefix: str, t1: list[float], t1c: list[float]) -> HealthyReference:
    names = [f"{prefix}{i}_T1" for i in range(len(t1))] + [
        f"{prefix}{i}_T1c" for i in range(len(t1c))
    ]
    return HealthyReference(
        {"mean": np.array(t1 + t1c)}, names, ["T1"] * len(t1) + ["T1c"] * len(t1c)
    )


def test_controls_of_an_unlearned_brain_are_flagged_per_sequence():
    previous = _reference("old", list(np.linspace(1, 2, 10)), list(np.linspace(1, 2, 10)))
    new = _reference("site", [2.1, 2.2, 1.9, 2.5, 2.05, 1.2], [1.1, 1.5, 1.8, 1.3, 1.6])
    (warning,) = unfamiliar_controls(previous, new)
    assert warning.startswith("the model reconstructs these 6 healthy T1 controls worse")
    assert "at or above 100 % of its 10 previous T1 controls" in warning
    assert "madgan train --init" in warning


def test_familiar_controls_too_few_or_the_same_controls_give_no_warning():
    previous = _reference("old", list(np.linspace(1, 2, 10)), [])
    assert unfamiliar_controls(previous, _reference("site", [1.2, 1.5, 1.7, 1.4, 1.9], [])) == []
    assert unfamiliar_controls(previous, _reference("site", [3.0, 3.0, 3.0, 3.0], [])) == []
    assert unfamiliar_controls(None, previous) == []
    # the previous controls plus four new ones: only the new ones count, and four are too few
    both = _reference("old", list(np.linspace(1, 2, 10)), [])
    both.names += [f"site{i}_T1" for i in range(4)]
    both.sequences += ["T1"] * 4
    both.scores["mean"] = np.r_[both.scores["mean"], [3.0] * 4]
    assert unfamiliar_controls(previous, both) == []
