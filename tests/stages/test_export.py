"""export: the ONNX graphs match torch, failing gates leave nothing behind, metrics are complete."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.exported import TinyExport, export_params
from textclf import io
from textclf.config import ExportParams, parse_params
from textclf.errors import ArtifactError, ConfigError
from textclf.inference import GRAPH_FILES, OnnxClassifier, model_version
from textclf.paths import Paths
from textclf.stages import export
from textclf.stages.prepare import file_md5

TEXTS = [
    "great",
    "the worst phone ever , broken again and again and again on monday",
    "meeting notes",
    "love it",
    "awful service " * 20,
    "schedule update for the team",
]


def test_outputs_are_complete(exported: TinyExport) -> None:
    names = {p.name for p in exported.onnx_dir.iterdir()}
    assert names == {
        "model.onnx",
        "model.onnx.data",
        "model.int8.onnx",
        "tokenizer.json",
        "textclf.json",
    }
    metrics = io.read_json(exported.paths.export_metrics)
    assert metrics == exported.metrics
    assert metrics["gates"]["passed"] is True
    assert metrics["n_test"] > 0
    for variant in ("fp32", "int8"):
        assert metrics[variant]["model_version"] == model_version(exported.onnx_dir, variant)
        assert metrics[variant]["size_mb"] > 0
    for bs in (1, 8):
        engines = metrics["latency"][f"batch_{bs}"]
        assert set(engines) == {"torch", "onnx_fp32", "onnx_int8"}
        for row in engines.values():
            assert row["texts_per_s"] > 0
            assert 0 < row["p50_ms"] <= row["p95_ms"]


def test_fp32_parity_with_torch(exported: TinyExport) -> None:
    from textclf.models.predict import load_trained, predict_logits

    model, encoder = load_trained(exported.paths.model_dir)
    reference = predict_logits(model, encoder, TEXTS, batch_size=len(TEXTS))
    onnx_model = OnnxClassifier(exported.onnx_dir, "fp32", threads=1)
    for batch_size in (1, 4, 64):  # dynamic batch and sequence axes, length-sorted batches
        logits = onnx_model.logits(TEXTS, batch_size)
        assert np.abs(logits - reference).max() <= 1e-4
    assert exported.metrics["fp32"]["max_abs_logit_diff"] <= 1e-4
    assert exported.metrics["fp32"]["agreement"] == 1.0


def test_rows_come_back_in_input_order(exported: TinyExport) -> None:
    # fp32: int8 dynamic quantisation scales activations per batch, so its logits depend (a
    # little) on the batch's other rows; fp32 only differs by padding noise.
    onnx_model = OnnxClassifier(exported.onnx_dir, "fp32", threads=1)
    together = onnx_model.logits(TEXTS, batch_size=2)
    one_by_one = np.concatenate([onnx_model.logits([t]) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    assert onnx_model.predict_proba([]).shape == (0, len(onnx_model.labels))


def test_the_same_model_exports_to_the_same_bytes_in_any_checkout(
    exported: TinyExport, tmp_path: Path
) -> None:
    """No absolute paths or other per-run data in the graphs: their md5 in dvc.lock (and so the
    release tag) depends on the model only."""
    from textclf.models.predict import load_trained
    from textclf.stages.export import export_onnx, quantize_int8

    model, encoder = load_trained(exported.paths.model_dir)
    digests = []
    for checkout in ("a", "b/deeper"):
        out = tmp_path / checkout
        out.mkdir(parents=True)
        fp32 = export_onnx(model, encoder, out / GRAPH_FILES["fp32"], exported.params.export.opset)
        int8 = quantize_int8(fp32, out / GRAPH_FILES["int8"], exported.params.export)
        graph = onnx.load(str(fp32), load_external_data=False).graph
        assert not any(node.metadata_props for node in graph.node)
        digests.append([file_md5(p) for p in (fp32, fp32.with_name(fp32.name + ".data"), int8)])
    assert digests[0] == digests[1]


def test_graph_signature(exported: TinyExport) -> None:
    for variant, name in GRAPH_FILES.items():
        graph = onnx.load(str(exported.onnx_dir / name), load_external_data=False).graph
        inputs = {i.name: i.type.tensor_type for i in graph.input}
        assert set(inputs) == {"input_ids", "attention_mask"}, variant
        for tensor in inputs.values():
            assert tensor.elem_type == onnx.TensorProto.INT64
            assert all(d.dim_param for d in tensor.shape.dim)  # both axes are dynamic
        assert [o.name for o in graph.output] == ["logits"]


def test_int8_quantises_every_projection_but_the_feed_forward_down_ones(
    exported: TinyExport,
) -> None:
    from textclf.stages.export import ffn_down_projections

    fp32 = exported.onnx_dir / GRAPH_FILES["fp32"]
    keep = ffn_down_projections(fp32)
    layers = 2  # the tiny BERT: one down-projection per layer, nothing else narrows
    assert len(keep) == layers
    int8 = onnx.load(str(exported.onnx_dir / GRAPH_FILES["int8"]), load_external_data=False)
    ops = [n.op_type for n in int8.graph.node]
    # Q, K, V, attention output and FFN up-projection per layer, then pooler and classifier ...
    assert ops.count("MatMulInteger") == 5 * layers + 2
    kept = {n.name for n in int8.graph.node if n.op_type == "MatMul"}
    assert set(keep) <= kept  # ... while the down-projections stay fp32


def _copy_project(exported: TinyExport, root: Path) -> Paths:
    """A root with the exported project's prepared data and trained model (no export)."""
    paths = Paths(root)
    shutil.copytree(exported.paths.prepared_dir, paths.prepared_dir)
    shutil.copytree(exported.paths.model_dir, paths.model_dir)
    return paths


def test_a_failed_gate_raises_and_leaves_nothing(exported: TinyExport, tmp_path: Path) -> None:
    assert exported.metrics["fp32"]["max_abs_logit_diff"] > 1e-12  # ONNX Runtime != torch bits
    paths = _copy_project(exported, tmp_path)
    paths.onnx_dir.mkdir(parents=True)
    (paths.onnx_dir / "model.onnx").write_text("stale export of an earlier model")
    io.write_json(paths.export_metrics, {"stale": True})
    params = export_params(max_abs_logit_diff=1e-12)
    with pytest.raises(ArtifactError) as err:
        export.run(params, paths)
    message = str(err.value)
    assert "fp32 parity" in message and "export.max_abs_logit_diff" in message
    assert "Fix:" in message
    assert not paths.onnx_dir.exists()
    assert not paths.export_metrics.exists()
    assert sorted(p.name for p in paths.onnx_dir.parent.iterdir()) == ["model", "prepared"]


def test_missing_model_is_named(exported: TinyExport, tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    shutil.copytree(exported.paths.prepared_dir, paths.prepared_dir)
    with pytest.raises(ArtifactError, match="dvc repro train"):
        export.run(exported.params, paths)


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"latency_batch_sizes": [1, 1]}, "export.latency_batch_sizes"),
        ({"latency_batch_sizes": [0]}, "distinct positive"),
        ({"max_abs_logit_diff": 0}, "export.max_abs_logit_diff"),
        ({"int8_min_agreement": 1.5}, "export.int8_min_agreement"),
        ({"opset": 11}, "export.opset"),
    ],
)
def test_bad_export_params_name_the_key(section: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        parse_params({"data": {"labels": ["a", "b"]}, "export": section})


def test_defaults_are_the_documented_gates() -> None:
    cfg = ExportParams()
    assert (cfg.max_abs_logit_diff, cfg.int8_min_agreement, cfg.int8_max_f1_drop) == (
        1e-4,
        0.99,
        0.005,
    )
    assert cfg.latency_batch_sizes == [1, 32]
