"""Baseline resolution: the latest blessed model trained before the candidate.

TFX's LatestBlessedModelStrategy resolves the newest blessed model, which on a
re-run with unchanged inputs is the candidate itself: the Evaluator's inputs
change, it re-runs, blesses the model against itself and the Pusher pushes the
same model again. Taking only models older than the candidate gives the same
baseline on a re-run, so every component comes from cache.

Vertex AI's compiler accepts only TFX's own strategies; the ``vertex`` profile
sets ``eval.baseline: latest_blessed`` to use the stock one.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.utils import typing_utils

CANDIDATE_KEY = "candidate"


class BlessedBeforeCandidateStrategy(LatestBlessedModelStrategy):
    """Resolve the latest blessed Model whose id is lower than the candidate's.

    Inputs: ``candidate`` (the Trainer's model in this run), ``model`` (all
    models) and ``model_blessing`` (all blessings). Outputs the same keys, with
    ``model``/``model_blessing`` holding the baseline, or empty.
    """

    def resolve_artifacts(
        self, store: object, input_dict: typing_utils.ArtifactMultiMap
    ) -> typing_utils.ArtifactMultiMap | None:
        candidates = list(input_dict.get(CANDIDATE_KEY, []))
        rest = {k: list(v) for k, v in input_dict.items() if k != CANDIDATE_KEY}
        empty: dict[str, list[types.Artifact]] = {k: [] for k in input_dict}
        if not candidates or not all(rest.values()):
            return empty
        newest = max(a.id for a in candidates)
        rest["model"] = [m for m in rest["model"] if m.id < newest]
        if not rest["model"]:
            return empty
        result = super().resolve_artifacts(store, rest)
        return {CANDIDATE_KEY: candidates, **(result or {k: [] for k in rest})}
