"""export: the ONNX graphs match torch, failing gates leave nothing behind, metrics are complete."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import pytest

from tests.conftest import tiny_params
from tests.exported import TinyExport, export_params
from textclf import io, quantize
from textclf.config.export import ExportParams
from textclf.config.params import parse_params
from textclf.data.prepared import read_split
from textclf.errors import ArtifactError, ConfigError
from textclf.inference import GRAPH_FILES, OnnxClassifier, model_version
from textclf.latency import padded_batches
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
    assert model.config._attn_implementation == "sdpa"  # the export left torch's own attention


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
    from textclf.quantize import quantize_int8
    from textclf.stages.export import export_onnx

    model, encoder = load_trained(exported.paths.model_dir)
    digests = []
    for checkout in ("a", "b/deeper"):
        out = tmp_path / checkout
        out.mkdir(parents=True)
        fp32 = export_onnx(model, encoder, out / GRAPH_FILES["fp32"], exported.params.export.opset)
        int8 = quantize_int8(
            fp32, out / GRAPH_FILES["int8"], exported.params.export, _calibration(exported)
        )
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


def _calibration(exported: TinyExport) -> list[dict[str, np.ndarray]]:
    from textclf.data.text import TextEncoder

    texts = read_split(exported.paths, "train")["text"].astype(str).tolist()
    return padded_batches(TextEncoder.from_dir(exported.onnx_dir), texts, 16)[0]


LAYERS = 2  # the tiny BERT


def test_int8_quantises_every_projection_after_smoothing_the_feed_forward_inputs(
    exported: TinyExport,
) -> None:
    assert exported.params.export.int8_smooth_alpha > 0
    fp32, int8 = (exported.onnx_dir / GRAPH_FILES[v] for v in ("fp32", "int8"))
    graph = onnx.load(str(int8), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    # Q, K, V, attention output, FFN up and down per layer, then pooler and classifier ...
    assert ops.count("MatMulInteger") == 6 * LAYERS + 2
    # ... while attention's two products of activations (Q.K^T, weights.V) stay fp32
    assert ops.count("MatMul") == 2 * LAYERS
    smooth = [n for n in graph.node if n.op_type == "Mul" and n.name.endswith(".smooth")]
    assert len(smooth) == 2 * LAYERS  # one per FFN input: LayerNorm output, GELU output
    assert not any(n.name.endswith(".smooth") for n in onnx.load(str(fp32)).graph.node)


def test_int8_can_keep_the_feed_forward_down_projections_fp32(
    exported: TinyExport, tmp_path: Path
) -> None:
    fp32 = exported.onnx_dir / GRAPH_FILES["fp32"]
    keep = quantize.ffn_down_projections(fp32)
    assert len(keep) == LAYERS  # one down-projection per layer, nothing else narrows
    cfg = export_params(int8_fp32_ffn_down=True).export
    int8 = quantize.quantize_int8(fp32, tmp_path / "model.int8.onnx", cfg, _calibration(exported))
    graph = onnx.load(str(int8), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("MatMulInteger") == 5 * LAYERS + 2
    assert ops.count("MatMul") == 3 * LAYERS  # attention's two products and the down-projection
    assert set(keep) <= {n.name for n in graph.node if n.op_type == "MatMul"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx"]  # no temp files


def _int8_weights(graph_path: Path) -> list[np.ndarray]:
    graph = onnx.load(str(graph_path)).graph
    return [
        onnx.numpy_helper.to_array(init)
        for init in graph.initializer
        if init.data_type == onnx.TensorProto.INT8 and init.name.endswith("_quantized")
    ]


def test_int8_weights_fit_7_bits_so_no_cpu_saturates_them(
    exported: TinyExport, tmp_path: Path
) -> None:
    """ONNX Runtime's AVX2 kernel sums pairs of u8 x s8 products in int16: 7-bit weights keep
    the pair within range, so CPUs with and without VNNI give the graph the same labels."""
    assert exported.params.export.int8_reduce_range is True  # the default ships it
    weights = _int8_weights(exported.onnx_dir / GRAPH_FILES["int8"])
    assert len(weights) >= 6 * LAYERS
    assert all(w.min() >= -64 and w.max() <= 64 for w in weights)  # 2 x 255 x 64 < 2 ** 15
    # Negative control: full-range weights reach the values that can saturate.
    cfg = export_params(int8_reduce_range=False).export
    fp32 = exported.onnx_dir / GRAPH_FILES["fp32"]
    full = quantize.quantize_int8(fp32, tmp_path / "full.int8.onnx", cfg, _calibration(exported))
    assert any(max(-int(w.min()), int(w.max())) > 64 for w in _int8_weights(full))


def test_int8_ignores_files_in_the_working_directory(
    exported: TinyExport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnx.save checks a named weights file against the working directory: temporary graphs
    let onnx name theirs, so leftovers where `textclf export` runs cannot fail it."""
    monkeypatch.chdir(tmp_path)
    for leftover in ("calibration.onnx.data", "model.onnx.data"):
        (tmp_path / leftover).write_text("not ours")
    out = tmp_path / "out"
    out.mkdir()
    fp32 = exported.onnx_dir / GRAPH_FILES["fp32"]
    quantize.quantize_int8(
        fp32, out / "model.int8.onnx", exported.params.export, _calibration(exported)
    )
    assert sorted(p.name for p in out.iterdir()) == ["model.int8.onnx"]


def test_smoothing_scales_shrink_outlier_channels_by_powers_of_two() -> None:
    channel_max = np.array([1.0, 0.5, 1.0, 2.0, 16.0, 10.0, 0.0], dtype=np.float32)  # median 1
    np.testing.assert_array_equal(
        quantize.smoothing_scales(channel_max, 0.5), [1, 1, 1, 1, 4, 4, 1]
    )  # 10 ** 0.5 = 3.2 -> 4
    np.testing.assert_array_equal(
        quantize.smoothing_scales(channel_max, 1.0), [1, 1, 1, 2, 16, 8, 1]
    )
    np.testing.assert_array_equal(quantize.smoothing_scales(np.zeros(4), 0.5), np.ones(4))


def test_smoothing_keeps_the_fp32_function(exported: TinyExport, tmp_path: Path) -> None:
    fp32 = exported.onnx_dir / GRAPH_FILES["fp32"]
    smoothed = tmp_path / "smoothed.onnx"
    assert quantize.smooth_feed_forward(fp32, smoothed, _calibration(exported), 1.0) == 2 * LAYERS
    scales = [
        onnx.numpy_helper.to_array(init)
        for init in onnx.load(str(smoothed)).graph.initializer
        if init.name.endswith(".smooth_inverse")
    ]
    assert len(scales) == 2 * LAYERS and any((s < 1).any() for s in scales)  # something shrank
    batch = OnnxClassifier(exported.onnx_dir, "fp32", threads=1).encoder(TEXTS)
    before, after = (
        ort.InferenceSession(str(g), providers=["CPUExecutionProvider"]).run(None, batch)[0]
        for g in (fp32, smoothed)
    )
    np.testing.assert_allclose(after, before, atol=1e-6)


def _run_to(graph_file: Path, tensor: str, batch: dict[str, np.ndarray]) -> np.ndarray:
    """The value of ``tensor`` inside the graph for ``batch``."""
    probe = quantize.with_outputs(onnx.load(str(graph_file)), [tensor])
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([tensor], batch)[0])


def test_smoothing_rescues_int8_from_an_outlier_channel(
    exported: TinyExport, tmp_path: Path
) -> None:
    """One feed-forward channel 1024x louder (and its output weight 1024x quieter): with one
    int8 scale per activation tensor the other channels round to nothing, and the layer's output
    is lost; smoothing moves the range into the weight row and keeps them."""
    import torch

    from textclf.models.predict import load_trained

    model, encoder = load_trained(exported.paths.model_dir)
    with torch.no_grad():
        for layer in model.bert.encoder.layer:
            layer.intermediate.dense.weight[0] *= 1024
            layer.intermediate.dense.bias[0] *= 1024
            layer.output.dense.weight[:, 0] /= 1024
    fp32 = export.export_onnx(model, encoder, tmp_path / "model.onnx", exported.params.export.opset)
    graph = onnx.load(str(fp32), load_external_data=False).graph
    down = quantize.ffn_down_projections(fp32)[0]
    (output,) = (n.output[0] for n in graph.node if n.name == down)
    batch = encoder(TEXTS)
    expected = _run_to(fp32, output, batch)
    errors = {}
    for alpha in (0.0, 0.5):
        cfg = export_params(int8_smooth_alpha=alpha).export
        int8 = quantize.quantize_int8(
            fp32, tmp_path / f"int8-{alpha}.onnx", cfg, _calibration(exported)
        )
        got = _run_to(int8, output, batch)
        errors[alpha] = float(np.linalg.norm(got - expected) / np.linalg.norm(expected))
    assert errors[0.5] < 0.1 < errors[0.0], errors  # relative error of the layer's output


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
        ({"int8_smooth_alpha": 1.5}, "export.int8_smooth_alpha"),
        ({"int8_calibration_size": 0}, "export.int8_calibration_size"),
    ],
)
def test_bad_export_params_name_the_key(section: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        parse_params(tiny_params(export=section))


def test_defaults_are_the_documented_gates() -> None:
    cfg = ExportParams()
    assert (cfg.max_abs_logit_diff, cfg.int8_min_agreement, cfg.int8_max_f1_drop) == (
        1e-4,
        0.985,  # README: the 20,000-row model's int8 graph agrees on 98.8%
        0.005,
    )
    assert cfg.latency_batch_sizes == [1, 32]
