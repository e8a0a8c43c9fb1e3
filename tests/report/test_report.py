"""The PR review: gate verdict and report against a base revision, on the tiny model's real files.

Each test commits one set of files on ``main`` of a throwaway repository and leaves another in the
workspace, then checks the verdict and the figures in the report against those files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.report.conftest import Repo, edit_json, gate_yaml, git
from textclf.cli import app
from textclf.report.build import CUT_NOTE, GITHUB_COMMENT_LIMIT, build_review, load_sides
from textclf.report.markdown import esc
from textclf.report.sources import GitError

# Gate settings that take the TF-IDF margin and the slices out of tests about other checks (the
# tiny model's margin over the baseline is small); the tests of those checks set them back.
LENIENT = {"min_macro_f1_over_baseline": -1.0, "fail_on_disparity": "never"}


def _files(real: dict[str, str], **changes: str | None) -> dict[str, str | None]:
    return {**real, **changes}


def _lower(key: str, by: float) -> Any:
    def change(metrics: dict[str, Any]) -> None:
        metrics[key] = round(metrics[key] - by, 6)
        for row in metrics["per_class"].values():
            row["f1"] = round(row["f1"] - by, 6)

    return change


def _headline_row(report: str, label: str) -> str:
    rows = [r for r in report.splitlines() if r.startswith(f"| {label} |")]
    assert len(rows) == 1, f"no single '{label}' row in:\n{report[:3000]}"
    return rows[0]


def _setup(repo: Repo, base: dict[str, str | None], new: dict[str, str | None]) -> str:
    repo.write(base)
    commit = repo.commit("base model")
    repo.branch("proposal")
    repo.write(new)
    return commit


def test_first_model_passes_with_nothing_to_compare(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = lenient_gate()
    commit = _setup(
        repo, {"gate": gate, "params": real_outputs["params"]}, _files(real_outputs, gate=gate)
    )
    review = build_review(repo.root, env={})
    new = json.loads(real_outputs["evaluate"])

    assert review.verdict.passed, review.verdict.to_json()
    assert review.verdict.base == "main" and review.verdict.base_commit == commit
    first = review.verdict.checks[0]
    assert first.name == "macro-F1 vs base" and first.detail.startswith("first model")
    md = review.markdown
    assert md.startswith(f"## Model review: `proposal` vs `main` (`{commit[:8]}`)")
    assert md.index("Promotion gate passed") < md.index("### Metrics")  # the verdict comes first
    assert "First model: `main` has no `reports/evaluate/metrics.json`" in md
    assert _headline_row(md, "test macro-F1") == (
        f"| test macro-F1 | — | **{new['macro_f1']:.4f}** | — |  |"
    )
    assert "No params changed" in md
    assert "```mermaid" in md and "xychart-beta" in md
    assert "### Training curves" in md
    # Drift did not run in this repo: shown as a warning, not a failure (fail_on_drift: false).
    drift = next(c for c in review.verdict.checks if c.name == "data drift")
    assert not drift.passed and not drift.blocking
    assert "_(warning, not blocking)_" in md
    # The confusion matrix is the file's, cell by cell.
    cm = json.loads(real_outputs["confusion"])
    for i, (label, row) in enumerate(zip(cm["labels"], cm["matrix"], strict=True)):
        cells = [f"**{v}**" if i == j else str(v) for j, v in enumerate(row)]
        assert f"| {esc(label)} | " + " | ".join(cells) + " |" in md


def lenient_gate(**gate: Any) -> str:
    """A gate.yaml with ``LENIENT`` and ``gate`` overrides."""
    return gate_yaml(**{**LENIENT, **gate})


def test_improved_model_shows_the_real_deltas_and_passes(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = lenient_gate()
    base_metrics = edit_json(real_outputs["evaluate"], _lower("macro_f1", 0.05))
    _setup(
        repo,
        _files(real_outputs, gate=gate, evaluate=base_metrics),
        _files(real_outputs, gate=gate),
    )
    review = build_review(repo.root, env={})
    old, new = json.loads(base_metrics), json.loads(real_outputs["evaluate"])

    assert review.verdict.passed, review.verdict.to_json()
    delta = new["macro_f1"] - old["macro_f1"]
    assert delta == pytest.approx(0.05)
    assert _headline_row(review.markdown, "test macro-F1") == (
        f"| test macro-F1 | {old['macro_f1']:.4f} | **{new['macro_f1']:.4f}** | {delta:+.4f} | 🟢 |"
    )
    assert _headline_row(review.markdown, "test accuracy").endswith("| ≈0 | ⚪ |")
    label, row = next(iter(new["per_class"].items()))
    f1_delta = row["f1"] - old["per_class"][label]["f1"]
    assert f"| **{row['f1']:.4f}** | {f1_delta:+.4f} |" in review.markdown
    assert review.verdict.checks[0].value == pytest.approx(delta)


@pytest.mark.parametrize(
    ("change", "delta", "mark"),
    [
        (2e-8, "≈0", "⚪"),  # float noise between machines: unchanged, not red
        (1e-3, "+0.0010", "🔴"),  # a real change in calibration error: worse
        (-1e-3, "-0.0010", "🟢"),
    ],
)
def test_deltas_below_the_noise_floor_read_as_unchanged(
    repo: Repo, real_outputs: dict[str, str], change: float, delta: str, mark: str
) -> None:
    def shift(metrics: dict[str, Any]) -> None:
        metrics["ece"] += change

    gate = lenient_gate()
    _setup(
        repo,
        _files(real_outputs, gate=gate),
        _files(real_outputs, gate=gate, evaluate=edit_json(real_outputs["evaluate"], shift)),
    )
    row = _headline_row(build_review(repo.root, env={}).markdown, "expected calibration error")
    assert row.endswith(f"| {delta} | {mark} |")


def test_regressed_model_fails_the_gate_and_says_why(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = lenient_gate(max_macro_f1_drop=0.01)
    worse = edit_json(real_outputs["evaluate"], _lower("macro_f1", 0.05))
    _setup(
        repo,
        _files(real_outputs, gate=gate),
        _files(real_outputs, gate=gate, evaluate=worse),
    )
    review = build_review(repo.root, env={})

    assert not review.verdict.passed
    assert [c.name for c in review.verdict.failures] == ["macro-F1 vs base"]
    old, new = json.loads(real_outputs["evaluate"]), json.loads(worse)
    reason = review.verdict.failures[0].detail
    assert f"{new['macro_f1']:.4f} vs {old['macro_f1']:.4f}" in reason
    assert "allowed drop 0.01" in reason
    md = review.markdown
    assert md.splitlines()[2].startswith("### ❌ Promotion gate failed: 1 of")
    assert f"| ❌ | macro-F1 vs base | {esc(reason)} |" in md
    assert _headline_row(md, "test macro-F1").endswith(" | -0.0500 | 🔴 |")

    runner = CliRunner()
    gated = runner.invoke(app, ["gate", "--root", str(repo.root)])
    assert gated.exit_code == 1, gated.output
    assert "FAIL  macro-F1 vs base" in gated.output and "gate FAILED against main" in gated.output
    verdict = json.loads((repo.root / "reports/pr/gate.json").read_text())
    assert verdict["passed"] is False and verdict["failures"][0].startswith("macro-F1 vs base")

    report = runner.invoke(app, ["report", "--root", str(repo.root)])
    assert report.exit_code == 0, report.output  # the report is written; `gate` fails the check
    assert (repo.root / "reports/pr/report.md").read_text() == md


def _eligible(report: dict[str, Any], skip: set[tuple[str, str, str]]) -> tuple[str, str, str]:
    """A (family, class, slice) whose rate can be lowered into a flag, other than ``skip``."""
    for family, members in report["slices"].items():
        scored = {n: e for n, e in members.items() if e.get("scored")}
        if len(scored) < 2:
            continue
        for label in next(iter(scored.values()))["prediction_rates"]:
            for name in scored:
                others = [e["prediction_rates"][label] for n, e in scored.items() if n != name]
                key = (family, label, name)
                if max(others) > 0 and key not in skip and all(k[:2] != key[:2] for k in skip):
                    return key
    raise AssertionError("no slice of the tiny report can be biased")


def biased(text: str, ratio: float, skip: tuple[tuple[str, str, str], ...] = ()) -> tuple:
    """The slices report with one slice's rate for a class at ``ratio`` x the best of its family.

    Below 0.8 that is a four-fifths flag. Returns (text, (family, class, slice)).
    """
    report = json.loads(text)
    family, label, name = _eligible(report, set(skip))
    members = report["slices"][family]
    best = max(
        e["prediction_rates"][label] for n, e in members.items() if n != name and e.get("scored")
    )
    members[name]["prediction_rates"][label] = best * ratio
    return json.dumps(report, indent=2), (family, label, name)


def test_gate_passes_on_the_cli_and_fails_on_baseline_and_disparity(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = lenient_gate()
    _setup(repo, _files(real_outputs, gate=gate), _files(real_outputs, gate=gate))
    ok = CliRunner().invoke(app, ["gate", "--root", str(repo.root)])
    assert ok.exit_code == 0, ok.output
    assert "gate passed against main" in ok.output

    new = json.loads(real_outputs["evaluate"])
    margin = new["macro_f1"] - new["baseline"]["macro_f1"]
    strict = lenient_gate(min_macro_f1_over_baseline=margin + 0.01, fail_on_disparity="any")
    slices, (family, label, name) = biased(real_outputs["slices"], 0.5)
    git(repo.root, "checkout", "-q", "main")
    repo.write({"gate": strict})
    repo.commit("strict gate")
    git(repo.root, "checkout", "-q", "-b", "strict-proposal")
    repo.write({"slices": slices})
    review = build_review(repo.root, env={})
    assert {c.name for c in review.verdict.failures} == {
        "macro-F1 over TF-IDF baseline",
        "slice disparity",
    }
    assert f"{label} in {family}/{name} (ratio 0.50)" in review.markdown.replace("&lt;", "<")


def test_disparity_gate_new_blocks_only_flags_the_base_does_not_have(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = lenient_gate(fail_on_disparity="new")
    base, known = biased(real_outputs["slices"], 0.3)
    _setup(
        repo,
        _files(real_outputs, gate=gate, slices=base),
        _files(real_outputs, gate=gate, slices=base),
    )
    check = next(
        c for c in build_review(repo.root, env={}).verdict.checks if c.name == "slice disparity"
    )
    assert check.passed and check.blocking and "flagged on main too" in check.detail

    both, added = biased(base, 0.6, skip=(known,))
    repo.write({"slices": both})
    verdict = build_review(repo.root, env={}).verdict
    check = next(c for c in verdict.checks if c.name == "slice disparity")
    assert not check.passed and check in verdict.failures
    family, label, name = added
    assert (
        f"1 flagged that main does not have: {label} in {family}/{name} (ratio 0.60)"
        in check.detail
    )


def test_disparity_gate_new_without_base_slices_is_a_warning(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = lenient_gate(fail_on_disparity="new")
    flagged, _ = biased(real_outputs["slices"], 0.3)
    _setup(
        repo,
        {"gate": gate, "params": real_outputs["params"]},
        _files(real_outputs, gate=gate, slices=flagged),
    )
    verdict = build_review(repo.root, env={}).verdict
    check = next(c for c in verdict.checks if c.name == "slice disparity")
    assert not check.passed and not check.blocking and check in verdict.warnings
    assert "no slice metrics on main" in check.detail


def test_export_parity_latency_and_size_budgets_are_enforced(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    export = json.loads(real_outputs["export"])
    p95 = export["latency"]["batch_1"]["onnx_int8"]["p95_ms"]
    size = export["int8"]["size_mb"]
    gate = lenient_gate(max_int8_p95_ms=p95 / 2, max_int8_size_mb=size / 2)
    # The export stage's own verdict is not trusted: the figures are judged with the limits.
    failed = edit_json(
        real_outputs["export"],
        lambda e: (e["gates"].update(passed=True), e["fp32"].update(max_abs_logit_diff=0.5)),
    )
    _setup(
        repo,
        {"gate": gate, "params": real_outputs["params"]},
        _files(real_outputs, gate=gate, export=failed),
    )
    review = build_review(repo.root, env={})
    failures = {c.name: c.detail for c in review.verdict.failures}
    assert set(failures) == {"export parity", "int8 p95 latency (batch 1)", "int8 model size"}
    assert f"{p95:.2f} ms (budget {p95 / 2:g} ms)" == failures["int8 p95 latency (batch 1)"]
    assert f"{size:.1f} MB" in failures["int8 model size"]


def test_a_missing_stage_output_fails_its_check_with_the_fix(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = lenient_gate()
    _setup(
        repo,
        {"gate": gate, "params": real_outputs["params"]},
        _files(real_outputs, gate=gate, export=None),
    )
    review = build_review(repo.root, env={})
    parity = next(c for c in review.verdict.checks if c.name == "export parity")
    assert not parity.passed
    assert parity.detail == (
        "missing reports/export/metrics.json: run `dvc repro` (the export stage writes it)"
    )


def test_an_export_report_without_a_field_fails_the_checks_naming_it(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    """The gate reads the export report through its typed model: a file without int8.size_mb
    (written by other code, or edited) fails the parity, latency and size checks, naming the
    field and the fix; the report still renders."""

    def drop(metrics: dict[str, Any]) -> None:
        del metrics["int8"]["size_mb"]

    gate = lenient_gate()
    broken = edit_json(real_outputs["export"], drop)
    _setup(repo, _files(real_outputs, gate=gate), _files(real_outputs, gate=gate, export=broken))
    review = build_review(repo.root, env={})
    for name in ("export parity", "int8 model size"):
        check = next(c for c in review.verdict.checks if c.name == name)
        assert not check.passed
        assert "reports/export/metrics.json is not a valid ExportMetrics report" in check.detail
        assert "int8.size_mb: Field required" in check.detail
        assert "rerun `dvc repro export`" in check.detail
    assert not review.verdict.passed


def test_new_and_removed_metrics_and_changed_params_are_listed(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    import yaml

    gate = lenient_gate()
    changed = yaml.safe_load(real_outputs["params"])
    changed["train"]["epochs"] += 1
    base_metrics = edit_json(
        real_outputs["evaluate"], lambda m: (m.update(old_score=0.25), m.pop("ece"))
    )
    new_metrics = edit_json(real_outputs["evaluate"], lambda m: m.update(new_score=0.75))
    _setup(
        repo,
        _files(real_outputs, gate=gate, evaluate=base_metrics),
        _files(real_outputs, params=yaml.safe_dump(changed), evaluate=new_metrics),
    )
    md = build_review(repo.root, env={}).markdown
    epochs = changed["train"]["epochs"]

    assert f"| `train.epochs` | `{epochs - 1}` | `{epochs}` |" in md
    assert "No params changed" not in md
    sub = "<sub>reports/evaluate/metrics.json</sub>"
    assert f"| `new_score` {sub} _(new)_ | — | 0.7500 | — |" in md
    assert f"| `old_score` {sub} _(removed)_ | 0.2500 | — | — |" in md
    ece = json.loads(new_metrics)["ece"]
    assert _headline_row(md, "expected calibration error") == (
        f"| expected calibration error | — | **{ece:.4f}** | — |  |"
    )


def test_a_long_report_is_cut_under_the_comment_limit_with_a_note(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = lenient_gate()

    def many_slices(report: dict[str, Any]) -> None:
        scored = next(
            s for fam in report["slices"].values() for s in fam.values() if s.get("scored")
        )
        report["slices"]["topic"] = {f"topic-{i:04d}": scored for i in range(3000)}

    slices = edit_json(real_outputs["slices"], many_slices)
    _setup(
        repo,
        _files(real_outputs, gate=gate),
        _files(real_outputs, gate=gate, slices=slices),
    )
    full = build_review(repo.root, env={}, max_chars=10**7)
    assert full.rows_per_table is None and len(full.markdown) > GITHUB_COMMENT_LIMIT

    review = build_review(repo.root, env={})
    assert len(review.markdown) <= 60_000
    assert review.rows_per_table is not None
    assert "more slices not shown" in review.markdown
    assert review.markdown.startswith(full.markdown.split("### Params changed")[0])

    tiny = build_review(repo.root, env={}, max_chars=2_000)
    assert len(tiny.markdown) <= 2_000
    assert tiny.markdown.endswith(CUT_NOTE)
    assert tiny.markdown.count("```") % 2 == 0
    assert "Promotion gate passed" in tiny.markdown
    with pytest.raises(ValueError, match="too small"):
        build_review(repo.root, env={}, max_chars=100)


def test_benchmarks_and_artifact_links_are_included(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = lenient_gate()
    _setup(repo, {"gate": gate, "params": real_outputs["params"]}, _files(real_outputs, gate=gate))
    rows = "\n".join(f"| {b} | onnx_int8 | {100 * b} | 1.00 | 2.00 | 3.00x |" for b in range(1, 9))
    (repo.root / "reports" / "bench.md").write_text(
        "## Benchmarks (quick, 2 CPUs)\n\n### Inference\n\n"
        "| batch | engine | texts/s | p50 ms | p95 ms | vs torch |\n"
        "|---:|---|---:|---:|---:|---:|\n"
        f"{rows}\n"
    )
    env = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "org/repo",
        "GITHUB_RUN_ID": "42",
        "GITHUB_HEAD_REF": "better-model",
    }
    md = build_review(repo.root, env=env).markdown
    assert md.startswith("## Model review: `better-model` vs `main`")
    assert "### Benchmarks" in md and "#### Benchmarks (quick, 2 CPUs)" in md
    assert "| 8 | onnx_int8 | 800 |" in md
    assert "https://github.com/org/repo/actions/runs/42#artifacts" in md
    assert "`artifacts/explain/shap.html`" in md and "`dvc_plots/index.html`" in md

    from textclf.report.markdown import embed

    cut = embed((repo.root / "reports" / "bench.md").read_text(), max_rows=3)
    assert "| 3 | onnx_int8 |" in "\n".join(cut) and "| 4 | onnx_int8 |" not in "\n".join(cut)
    assert cut[-1] == "_… 5 more rows not shown (kept under GitHub's comment size limit)._"


def test_missing_base_revision_is_a_clear_error(repo: Repo, real_outputs: dict[str, str]) -> None:
    repo.write({"params": real_outputs["params"]})
    git(repo.root, "checkout", "-qb", "trunk")
    repo.commit("only trunk")
    with pytest.raises(GitError, match="neither origin/main nor main exists"):
        build_review(repo.root, env={})
    with pytest.raises(
        GitError,
        match=r"base revision 'origin/release' not found.*git fetch origin "
        r"release.*fetch-depth: 0",
    ):
        build_review(repo.root, "origin/release", env={})
    result = CliRunner().invoke(app, ["report", "--root", str(repo.root), "--base", "nope"])
    assert result.exit_code == 2 and "base revision 'nope' not found" in result.output


def test_origin_main_is_preferred_over_main(repo: Repo, real_outputs: dict[str, str]) -> None:
    repo.write({"params": real_outputs["params"], "gate": real_outputs["gate"]})
    first = repo.commit("first")
    second = repo.commit("second")
    git(repo.root, "update-ref", "refs/remotes/origin/main", first)
    review = build_review(repo.root, env={})
    assert (review.base.label, review.base.commit) == ("origin/main", first)
    assert build_review(repo.root, "main", env={}).base.commit == second


def test_outside_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="is not inside a git repository"):
        load_sides(tmp_path)


def test_text_from_tweets_cannot_ping_or_break_tables() -> None:
    assert esc("@alice see #12 | <b>x</b>") == (
        "@\u200balice see #\u200b12 \\| &lt;b&gt;x&lt;/b&gt;"
    )
