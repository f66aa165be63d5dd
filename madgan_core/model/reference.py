"""The healthy reference stored with a model: controls' scores, z-statistics, percentiles.

:func:`madgan_core.scoring.calibrate.build_reference` makes one; :func:`madgan_core.model.checkpoint.load_model`
reads it once, with :meth:`HealthyReference.from_dict`, into ``LoadedModel.reference``;
scoring ranks new scans against it. A model file keeps it as the plain dict of
:meth:`HealthyReference.to_dict` (tensors and Python data only, so it loads with
``weights_only``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from madgan_core.errors import MadganError
from madgan_core.model.normative import (
    Adjustment,
    NormativeFit,
    NormsPlan,
    describe_adjustment,
    failed_check,
    fit_norms,
    plan_norms,
    usable,
)
from madgan_core.model.zstats import ZStats
from madgan_core.modes import (
    ANOMALY,
    ANOMALY_PARTS,
    MIN_CONTROLS_FOR_ANOMALY,
    REFERENCE,
    ScoreInputs,
    anomaly_of,
    compute_scores,
    leave_one_out_anomaly,
)
from madgan_core.scans.covariates import Covariates

# Percentile bands shown to readers.
UNUSUAL_PERCENTILE = 90.0
HIGHLY_UNUSUAL_PERCENTILE = 99.0


class MalformedReference(ValueError):
    """A stored reference is not what :meth:`HealthyReference.to_dict` writes."""


@dataclass
class HealthyReference:
    """Score distribution of held-out healthy controls, stored with a model.

    Attributes:
        scores: per scoring mode, the controls' scan scores (NaN: no score for that control).
        names: the controls' scan names, in the same order.
        sequences: the controls' sequences (T1, T1c), in the same order.
        zstats: per sequence, healthy ℓ2 statistics for z-maps (:mod:`madgan_core.model.zstats`).
        domain: the controls' domain profile summary (``ProfileSummary.to_dict()`` of
            :mod:`madgan_core.prep.domain_profile`), or None for a reference made before
            profiles.
        covariates: the controls' age, sex and site, in the same order (None where the
            manifest gave none); empty when no control had any. The normative reference
            (:mod:`madgan_core.model.normative`) uses them.
    """

    scores: dict[str, np.ndarray]
    names: list[str]
    sequences: list[str] = field(default_factory=list)
    zstats: dict[str, ZStats] = field(default_factory=dict)
    domain: dict | None = None
    covariates: list[Covariates | None] = field(default_factory=list)
    _norms: dict[tuple, NormativeFit] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.names)

    def _controls(self, sequence: str | None) -> np.ndarray:
        """Indices of the controls of ``sequence`` (all controls if it has none)."""
        chosen = [i for i, s in enumerate(self.sequences) if s == sequence]
        return np.asarray(chosen if chosen else range(self.n), dtype=np.int64)

    def n_for(self, sequence: str | None = None) -> int:
        return len(self._controls(sequence))

    def control_scores(self, mode: str, sequence: str | None) -> np.ndarray:
        """The ``mode`` scores of the controls of ``sequence``; NaN (no statistics) left out."""
        values, _ = self._control_values(mode, sequence)
        return values[np.isfinite(values)]

    def _control_values(self, mode: str, sequence: str | None) -> tuple[np.ndarray, np.ndarray]:
        """The ``mode`` scores of the controls of ``sequence`` (NaN kept) and their indices."""
        chosen = self._controls(sequence)
        if mode == ANOMALY:
            return self.control_anomaly_scores(sequence), chosen
        values = self.scores.get(mode)
        if values is None or len(values) == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        return values[chosen], chosen

    def percentile(self, score: float, mode: str = "mean", sequence: str | None = None) -> float:
        """Percentage of controls scoring at or below ``score`` (0 below all, 100 above all)."""
        values = self.control_scores(mode, sequence)
        if len(values) == 0:
            raise MadganError(f"the healthy reference has no scores for mode {mode!r}")
        return float(100.0 * np.count_nonzero(values <= score) / len(values))

    def percentiles(
        self, scores: dict[str, float], sequence: str | None = None
    ) -> dict[str, float]:
        """Percentiles of each mode in ``scores`` that the controls of ``sequence`` have."""
        return {
            mode: self.percentile(value, mode, sequence)
            for mode, value in scores.items()
            if len(self.control_scores(mode, sequence))
        }

    def adjusted_percentiles(
        self,
        scores: dict[str, float],
        sequence: str | None = None,
        covariates: Covariates | None = None,
    ) -> tuple[dict[str, float], dict[str, Adjustment]]:
        """Percentiles against controls of the scan's age and sex where the reference can
        make them (:mod:`madgan_core.model.normative`), else the plain ones; and, per
        mode, how each was made (none for a scan without covariates or a reference
        without them: everything as :meth:`percentiles`)."""
        plain = self.percentiles(scores, sequence)
        if covariates is None or not self.covariates:
            return plain, {}
        percentiles, adjustments = {}, {}
        for mode, value in scores.items():
            if mode not in plain:
                continue
            fit, plan = self.normative_fit(mode, sequence, covariates)
            if fit is None:
                percentiles[mode] = plain[mode]
                if plan.note:
                    adjustments[mode] = Adjustment(note=plan.note, loo_r2=plan.loo_r2)
                continue
            percentiles[mode] = fit.percentile(value, covariates)
            adjustments[mode] = Adjustment(
                describe_adjustment(covariates, plan), fit.n, loo_r2=fit.loo_r2
            )
        return percentiles, adjustments

    def normative_fit(
        self, mode: str, sequence: str | None, covariates: Covariates
    ) -> tuple[NormativeFit | None, NormsPlan]:
        """The model of ``mode`` on the covariates ``covariates`` has, fitted in the controls
        of ``sequence`` that have them (cached); None, with the plan's note, when the scan
        cannot be adjusted or the fit fails its leave-one-out check."""
        if not self.covariates:
            return None, NormsPlan(False, False)
        values, chosen = self._control_values(mode, sequence)
        people = [
            self.covariates[i] if np.isfinite(v) else None
            for v, i in zip(values, chosen, strict=True)
        ]
        plan = plan_norms(covariates, people)
        if not plan.adjusts:
            return None, plan
        key = (mode, sequence, plan.uses_age, plan.uses_sex)
        if key not in self._norms:
            keep = [k for k, person in enumerate(people) if usable(person, plan)]
            self._norms[key] = fit_norms(
                values[keep], [people[k] for k in keep], plan.uses_age, plan.uses_sex
            )
        fit = self._norms[key]
        if fit.loo_r2 <= 0:
            return None, failed_check(fit, covariates, plan)
        return fit, plan

    def anomaly(
        self, scores: Mapping[str, float], sequence: str | None
    ) -> tuple[float, str] | None:
        """The calibrated headline and the z-map score that sets it: the larger of the
        scan's z-map scores, each on the normal scale of the controls of its sequence
        (:func:`madgan_core.modes.anomaly_of`; None: no z-map score with enough controls).

        Taking the largest of several is corrected for by ranking it among the controls'
        own anomaly scores (:meth:`control_anomaly_scores`), made the same way.
        """
        return anomaly_of(scores, lambda part: self.control_scores(part, sequence))

    def anomaly_score(self, scores: Mapping[str, float], sequence: str | None) -> float | None:
        found = self.anomaly(scores, sequence)
        return None if found is None else found[0]

    def anomaly_driver(self, scores: Mapping[str, float], sequence: str | None) -> str | None:
        found = self.anomaly(scores, sequence)
        return None if found is None else found[1]

    def control_anomaly_scores(self, sequence: str | None) -> np.ndarray:
        """Each control's anomaly score, made against the other controls (leave-one-out),
        so a scan's percentile among them is honest."""
        chosen = self._controls(sequence)
        parts = [
            p
            for p in ANOMALY_PARTS
            if p in self.scores
            and np.isfinite(self.scores[p][chosen]).sum() >= MIN_CONTROLS_FOR_ANOMALY
        ]
        if not parts:
            return np.full(len(chosen), np.nan)
        return leave_one_out_anomaly(np.stack([self.scores[p][chosen] for p in parts]))

    def supports_anomaly(self, sequence: str | None) -> bool:
        """True when the controls of ``sequence`` carry enough z-map scores for the headline."""
        return bool(np.isfinite(self.control_anomaly_scores(sequence)).any())

    def with_anomaly(self, scores: dict[str, float], sequence: str | None) -> dict[str, float]:
        """``scores`` plus the modes computed against the controls (``needs`` ``reference``:
        the ``anomaly`` headline) where the reference supports them."""
        inputs = ScoreInputs(scores=scores, reference=self, sequence=sequence)
        placed = compute_scores(REFERENCE, inputs)
        if not placed:
            return scores
        return {**scores, **{mode: float(value) for mode, value in placed.items()}}

    def zstats_for(self, sequence: str | None) -> ZStats | None:
        """Statistics of ``sequence``; with no sequence given, the only ones there are."""
        if sequence is None:
            return next(iter(self.zstats.values())) if len(self.zstats) == 1 else None
        return self.zstats.get(sequence)

    def fitted_modes(self) -> set[str]:
        """The noise-adjusted modes every sequence's statistics have a noise fit for."""
        if not self.zstats:
            return set()
        return set.intersection(*(set(z.noise_fits) for z in self.zstats.values()))

    def to_dict(self) -> dict[str, object]:
        return {
            "scores": {mode: [float(v) for v in values] for mode, values in self.scores.items()},
            "names": list(self.names),
            "sequences": list(self.sequences),
            "zstats": {seq: stats.to_dict() for seq, stats in self.zstats.items()},
            **({} if self.domain is None else {"domain": self.domain}),
            **(
                {"covariates": [None if c is None else c.to_dict() for c in self.covariates]}
                if any(c is not None and c.known for c in self.covariates)
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping, shape: tuple[int, int] | None = None) -> HealthyReference:
        """Parse and check a stored reference (the dict of :meth:`to_dict`).

        Args:
            data: the stored dict.
            shape: the model's slice ``(height, width)``, which z-statistics must match.

        Raises:
            MalformedReference: saying what is wrong.
        """
        try:
            return cls._parse(data, shape)
        except MalformedReference:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise MalformedReference(detail) from None

    @classmethod
    def _parse(cls, data: Mapping, shape: tuple[int, int] | None) -> HealthyReference:
        if not isinstance(data, Mapping):
            raise MalformedReference(f"expected a mapping, got {type(data).__name__}")
        names = [str(n) for n in _listed(data["names"], "names")]
        sequences = [str(s) for s in _listed(data.get("sequences") or [], "sequences")]
        if sequences and len(sequences) != len(names):
            raise MalformedReference(f"{len(sequences)} sequences for {len(names)} controls")
        stored = data["scores"]
        if not isinstance(stored, Mapping):
            raise MalformedReference("scores must map each mode to the controls' scores")
        scores = {}
        for mode, values in stored.items():
            values = np.asarray(_listed(values, f"scores[{mode!r}]"), dtype=np.float64)
            if values.shape != (len(names),):
                raise MalformedReference(
                    f"scores[{mode!r}] holds {values.size} values for {len(names)} controls"
                )
            scores[str(mode)] = values
        zstats = {}
        for sequence, stats in (data.get("zstats") or {}).items():
            parsed = ZStats.from_dict(stats)
            if shape is not None and parsed.mean.shape[1:] != tuple(shape):
                raise MalformedReference(
                    f"z-statistics of {sequence} are {parsed.mean.shape[1]}x{parsed.mean.shape[2]}, "
                    f"the model's slices {shape[0]}x{shape[1]}"
                )
            zstats[str(sequence)] = parsed
        domain = data.get("domain")
        if domain is not None and not isinstance(domain, Mapping):
            raise MalformedReference("domain must be a mapping")
        covariates = []
        for person in _listed(data.get("covariates") or [], "covariates"):
            if person is not None and not isinstance(person, Mapping):
                raise MalformedReference("covariates must be mappings of age, sex and site")
            covariates.append(None if person is None else Covariates.from_dict(person))
        if covariates and len(covariates) != len(names):
            raise MalformedReference(f"{len(covariates)} covariates for {len(names)} controls")
        return cls(
            scores=scores,
            names=names,
            sequences=sequences,
            zstats=zstats,
            domain=None if domain is None else dict(domain),
            covariates=covariates,
        )


def _listed(values: object, what: str) -> list | tuple:
    if not isinstance(values, list | tuple):
        raise MalformedReference(f"{what} must be a list, got {type(values).__name__}")
    return values
