"""Run a behaviour suite against a model's probabilities; pass rates and failing cases per test.

The model is any function from texts to class probabilities (the stage and the gate pass the
exported ONNX graph that serving runs). A test whose expectations name a label the model does
not have is not applicable, and says so; it never counts as passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textclf.behaviour.suite import Case, Suite, TestSpec, cases, parse_suite, suite_digest

if TYPE_CHECKING:
    from textclf.config.behaviour import BehaviourParams

Predict = Callable[[Sequence[str]], np.ndarray]


def _not_applicable(test: TestSpec, labels: list[str]) -> str | None:
    missing = [x for x in test.labels_named() if x not in labels]
    if missing:
        return (
            f"names label(s) {missing} the model does not have (its labels: {labels}); "
            "write tests for your labels in the suite"
        )
    return None


def _result(test: TestSpec, n: int, passed: int, failures: list[dict[str, Any]]) -> dict[str, Any]:
    rate = passed / n
    return {
        "type": test.type,
        "description": test.description,
        "applicable": True,
        "reason": None,
        "cases": n,
        "passed": passed,
        "pass_rate": round(rate, 6),
        "min_pass_rate": test.min_pass_rate,
        "ok": rate + 1e-12 >= test.min_pass_rate,
        "failures": failures,
    }


def _skipped(test: TestSpec, reason: str) -> dict[str, Any]:
    return {
        "type": test.type,
        "description": test.description,
        "applicable": False,
        "reason": reason,
        "cases": 0,
        "passed": 0,
        "pass_rate": None,
        "min_pass_rate": test.min_pass_rate,
        "ok": None,
        "failures": [],
    }


def _judge(
    test: TestSpec,
    items: list[Case],
    prob: Callable[[str], np.ndarray],
    labels: list[str],
    max_failures: int,
) -> dict[str, Any]:
    """Pass/fail of every case of one applicable test, the worst failures first."""
    passed = 0
    failures: list[tuple[float, dict[str, Any]]] = []
    for case in items:
        p = prob(case.text)
        pred = labels[int(p.argmax())]
        if test.type == "mft":
            ok = pred == test.expect
            score = float(p.max())
            record = {"text": case.text, "prediction": pred, "confidence": round(score, 4)}
        else:
            assert case.changed is not None  # inv and dir cases are pairs
            q = prob(case.changed)
            changed_pred = labels[int(q.argmax())]
            record = {
                "text": case.text,
                "changed": case.changed,
                "prediction": pred,
                "changed_prediction": changed_pred,
            }
            if test.type == "inv":
                ok = changed_pred == pred
                score = float(q.max())
                record["changed_confidence"] = round(score, 4)
            else:
                label = test.away_from or test.towards
                assert label is not None  # a dir test has one (validated)
                k = labels.index(label)
                before, after = float(p[k]), float(q[k])
                record |= {"p_before": round(before, 4), "p_after": round(after, 4)}
                moved = (before - after) if test.away_from is not None else (after - before)
                flipped = (changed_pred != label) == (test.away_from is not None)
                ok = moved > test.min_delta and (flipped or not test.flip)
                score = -moved
        if ok:
            passed += 1
        else:
            failures.append((score, record))
    failures.sort(key=lambda f: -f[0])
    return _result(test, len(items), passed, [r for _, r in failures[:max_failures]])


def run_suite(
    suite: Suite, predict_proba: Predict, labels: list[str], max_failures: int = 5
) -> dict[str, Any]:
    """Every test's result, in suite order, and a summary of what fell below its threshold."""
    expanded: dict[str, list[Case]] = {}
    results: dict[str, dict[str, Any]] = {}
    for test in suite.tests:
        reason = _not_applicable(test, labels)
        if reason is None:
            expanded[test.name] = cases(suite, test)
            if not expanded[test.name]:
                reason = "no case: the perturbation applies to none of its texts"
        if reason is not None:
            results[test.name] = _skipped(test, reason)
    texts = sorted(
        {t for items in expanded.values() for c in items for t in (c.text, c.changed) if t}
    )
    probs = predict_proba(texts) if texts else np.zeros((0, len(labels)))
    index = {t: i for i, t in enumerate(texts)}

    def prob(text: str) -> np.ndarray:
        return np.asarray(probs[index[text]])

    for test in suite.tests:
        if test.name not in results:
            results[test.name] = _judge(test, expanded[test.name], prob, labels, max_failures)
    ordered = {t.name: results[t.name] for t in suite.tests}
    return {
        "tests": ordered,
        "summary": {
            "tests": len(ordered),
            "applicable": sum(1 for r in ordered.values() if r["applicable"]),
            "cases": sum(r["cases"] for r in ordered.values()),
            "not_applicable": [n for n, r in ordered.items() if not r["applicable"]],
            "below_threshold": [n for n, r in ordered.items() if r["ok"] is False],
        },
    }


def run_on_export(
    text: str,
    where: str,
    onnx_dir: Path,
    cfg: BehaviourParams,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """The report of the suite ``text`` (named ``where``) on the export in ``onnx_dir``.

    ``labels``, when given, must be the export's (prepare's labels: the stage); the judge passes
    none and runs on whatever labels the PR's export predicts. A bad suite fails before the model
    loads.
    """
    from textclf.inference import OnnxClassifier, load_for_labels

    suite = parse_suite(text, where)
    model = (
        OnnxClassifier(onnx_dir, cfg.variant, threads=cfg.threads)
        if labels is None
        else load_for_labels(onnx_dir, cfg.variant, labels, threads=cfg.threads)
    )
    result = run_suite(
        suite,
        lambda texts: model.predict_proba(texts, cfg.batch_size),
        model.labels,
        cfg.max_failures,
    )
    return {
        "suite": where,
        "suite_sha256": suite_digest(text),
        "model": {"variant": cfg.variant, "version": model.version},
        **result,
    }
