"""What ``notebooks/model_analysis.ipynb`` calls: the notebook holds no logic of its own.

Everything is found through MLMD: the run, its Evaluator's output, and the
baseline's own evaluation (the run that blessed the baseline model). Each
function accepts ``None`` for "no run to review" and then does nothing, so
"Run all" on an empty store ends on the first cell's plain message.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from models.rule import RULE_OUTPUT
from models.signatures import OUTPUT_KEY
from pipeline.config import PipelineConfig, load_config
from pipeline.results import Evaluation
from review import charts
from review.runs import RunInfo, RunNotFound, list_runs, show_run


@dataclasses.dataclass
class Review:
    cfg: PipelineConfig
    run: RunInfo
    evaluation_uri: str
    evaluation: Evaluation
    baseline_evaluation_uri: str | None  # where the baseline model was itself evaluated and blessed



def load(output_dir: str | None = None, run_id: str = "latest", profile: str = "local") -> Review | None:
    """The run to review (the latest by default), or None with a plain message if there is none.

    ``output_dir`` defaults to ``$TFXP_OUTPUT_DIR`` (``make notebook`` passes it on), then the profile's.
    """
    from pipeline.run import summarize_run

    output_dir = output_dir or os.environ.get("TFXP_OUTPUT_DIR")
    overrides = {"output_dir": str(Path(output_dir).resolve())} if output_dir else {}
    cfg = load_config(profile, overrides)
    try:
        run, _ = show_run(cfg.metadata_path, cfg.name, run_id)
    except RunNotFound as exc:
        print(f"Nothing to review: {exc}.")
        print("Run `make demo` (or `tfxp run`) first, then run this notebook again.")
        return None
    evaluator = run.component("Evaluator")
    summary = summarize_run(cfg, run.run_id)
    if evaluator is None or summary is None or summary.evaluation is None:
        print(f"Run {run.run_id} has no evaluation ({run.status}): pick another RUN_ID from `tfxp runs list`.")
        return None
    uri = next(o.uri for o in evaluator.outputs if o.key == "evaluation")
    review = Review(cfg, run, uri, summary.evaluation, _baseline_evaluation(cfg, summary.evaluation.baseline_uri))
    verdict = "BLESSED" if review.evaluation.blessed else "NOT BLESSED"
    print(f"Reviewing run {run.run_id} of {cfg.name}: {verdict}; {summary.push_note or 'nothing pushed'}.")
    print(f"Evaluation: {uri}")
    print(f"Baseline's evaluation: {review.baseline_evaluation_uri or 'none (no baseline in this run)'}")
    return review


def _baseline_evaluation(cfg: PipelineConfig, baseline_model_uri: str | None) -> str | None:
    """The evaluation, in an earlier run, whose blessing made the baseline model the baseline."""
    if not baseline_model_uri:
        return None
    for run in list_runs(cfg.metadata_path, cfg.name, limit=1000):
        trainer, evaluator = run.component("Trainer"), run.component("Evaluator")
        if trainer and evaluator and run.blessed and any(o.uri == baseline_model_uri for o in trainer.outputs):
            return next(o.uri for o in evaluator.outputs if o.key == "evaluation")
    return None


def verdict(review: Review | None) -> None:
    if review is None:
        return
    ev = review.evaluation
    if ev.blessed:
        print("BLESSED: every threshold met.")
        return
    print("NOT BLESSED. Failed thresholds:")
    for failure in ev.failures:
        print(f"  - {failure}")


def slice_table(review: Review | None) -> Any:
    """Candidate, baseline and rule per slice, as a pandas DataFrame (largest slices first)."""
    if review is None:
        return None
    import pandas as pd

    e = review.cfg.eval
    failed = review.evaluation.failed_slices()
    rows = []
    for s in [review.evaluation.overall, *review.evaluation.slices]:
        judged = s.slice == "Overall" or s.judged(e.slice_min_examples, e.slice_min_class_examples)
        if judged:
            verdict = "FAIL" if s.slice in failed else "pass"
        elif s.example_count < e.slice_min_examples:
            verdict = f"not judged: < {e.slice_min_examples} rows"
        else:
            verdict = f"not judged: < {e.slice_min_class_examples} of a class"
        auc_defined = charts.both_classes(s)  # AUC means nothing on a one-class slice
        rows.append(
            {
                "slice": s.slice,
                "rows": s.example_count,
                "judged": judged,
                "auc": s.metrics.get("auc") if auc_defined else None,
                "rule auc": s.rule.get("auc") if auc_defined else None,
                "baseline auc": s.baseline.get("auc") if auc_defined else None,
                "lift over rule": s.metrics.get("auc_lift_over_rule") if auc_defined else None,
                "accuracy": s.metrics.get("binary_accuracy"),
                "verdict": verdict,
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["judged", "rows"], ascending=False).reset_index(drop=True)


def show_charts(review: Review | None) -> None:
    """The comparison chart and one chart per slice feature, drawn inline."""
    if review is None:
        return
    from IPython.display import display

    e = review.cfg.eval
    display(charts.comparison_chart(review.evaluation, e))
    for feature, slices in charts.slices_by_feature(review.evaluation, e).items():
        display(charts.slice_chart(feature, slices, e))


def slicing_columns(review: Review | None) -> list[str]:
    """The single features the evaluation was sliced on."""
    return [keys[0] for keys in review.cfg.eval.slices if len(keys) == 1] if review else []


def eval_result(review: Review | None) -> Any:
    """TFMA's EvalResult of the candidate, for ``tfma.view.render_slicing_metrics``."""
    if review is None:
        return None
    return _load_flat(review.evaluation_uri)


def _load_flat(evaluation_uri: str) -> Any:
    """The candidate's EvalResult with the rule's metrics beside the model's, as one output.

    The evaluation has two outputs (model and rule). TFMA's views then open on
    an empty "Outputs" choice; as one output, each slice's row shows the model's
    metrics and the rule's (``rule/auc``, ...) side by side from the start.
    """
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri, model_name=_candidate_name(evaluation_uri))

    def flat(by_output: dict) -> dict:
        merged = dict(by_output.get(OUTPUT_KEY, {}).get("", {}))
        merged.update({f"{RULE_OUTPUT}/{k}": v for k, v in by_output.get(RULE_OUTPUT, {}).get("", {}).items()})
        return {"": {"": merged}}

    return result._replace(
        slicing_metrics=[(key, flat(metrics)) for key, metrics in result.slicing_metrics],
        plots=[(key, {"": plots.get(OUTPUT_KEY, {})}) for key, plots in result.plots],
    )


def validation_result(review: Review | None) -> Any:
    if review is None:
        return None
    import tensorflow_model_analysis as tfma

    return tfma.load_validation_result(review.evaluation_uri)


def history(review: Review | None, limit: int = 10) -> Any:
    """TFMA EvalResults of the recent runs' distinct evaluations, oldest first, for ``render_time_series``."""
    if review is None:
        return None
    import tensorflow_model_analysis as tfma

    uris: list[str] = []
    for run in reversed(list_runs(review.cfg.metadata_path, review.cfg.name, limit=limit)):
        evaluator = run.component("Evaluator")
        for o in evaluator.outputs if evaluator else []:
            if o.key == "evaluation" and o.uri not in uris:
                uris.append(o.uri)
    # Each result holds the candidate of its run; the baseline copies are left out.
    from tensorflow_model_analysis.view.view_types import EvalResults

    results = [_load_flat(uri) for uri in uris]
    return EvalResults(results, tfma.constants.MODEL_CENTRIC_MODE)


def _candidate_name(evaluation_uri: str) -> str | None:
    """"candidate" in an evaluation against a baseline, else None (a single model)."""
    from tensorflow_model_analysis.writers import eval_config_writer

    config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    return "candidate" if any(spec.name == "candidate" for spec in config.model_specs) else None
