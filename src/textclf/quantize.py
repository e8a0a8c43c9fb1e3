"""int8 quantisation of an exported graph: SmoothQuant graph surgery, then ONNX Runtime's dynamic
quantisation. The export stage calls :func:`quantize_int8`; the rest is its machinery.

Works on BERT-family graphs from the torch exporter: linear layers are found by the shapes of
their constant weights (the exporter's node names carry no module names).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from textclf.config.export import ExportParams
from textclf.inference import INPUT_NAMES


def _linear_weights(graph: Any) -> dict[str, tuple[int, ...]]:
    """MatMul node name -> shape ``[in, out]`` of its constant 2-D weight (linear layers)."""
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    return {
        node.name: shapes[node.input[1]]
        for node in graph.node
        if node.op_type == "MatMul" and len(shapes.get(node.input[1], ())) == 2
    }


def ffn_down_projections(graph_file: Path) -> list[str]:
    """MatMul nodes whose constant weight narrows its input (``[in, out]`` with ``in > out``).

    In a BERT-family graph these are the feed-forward output projections (intermediate size back
    to hidden size), found by shape because the exporter's node names carry no module names.
    """
    import onnx

    graph = onnx.load(str(graph_file), load_external_data=False).graph
    return [name for name, (n_in, n_out) in _linear_weights(graph).items() if n_in > n_out]


def feed_forward_inputs(graph: Any) -> dict[str, list[Any]]:
    """Input tensor -> the MatMul nodes reading it, for the linear layers whose weight is not
    square: the feed-forward up-projections (reading the attention block's LayerNorm output) and
    down-projections (reading the GELU output) of a BERT-family graph."""
    weights = _linear_weights(graph)
    inputs: dict[str, list[Any]] = {}
    for node in graph.node:
        shape = weights.get(node.name)
        if shape is not None and shape[0] != shape[1]:
            inputs.setdefault(node.input[0], []).append(node)
    return inputs


def save_with_side_file(model: Any, path: Path) -> Path:
    """Save ``model`` at ``path``, its weights in one side file that onnx names uniquely.

    For temporary graphs only. Naming the side file ourselves would make ``onnx.save`` refuse
    when a file of that name exists in the *working* directory (it checks there, not next to
    ``path``).
    """
    import onnx

    onnx.save(model, str(path), save_as_external_data=True)
    return path


def with_outputs(model: Any, tensors: list[str]) -> Any:
    """A copy of ``model`` that also returns the float tensors ``tensors`` (intermediates)."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in tensors
    )
    return probe


def activation_maxima(
    model: Any, tensors: list[str], batches: list[dict[str, np.ndarray]], workdir: Path
) -> dict[str, np.ndarray]:
    """Per-channel max |value| of each of ``tensors`` (last axis) over the real tokens (attention
    mask 1) of ``batches``, from running ``model`` (fp32, weights loaded) in ONNX Runtime."""
    import onnxruntime as ort

    path = save_with_side_file(with_outputs(model, tensors), workdir / "calibration.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    maxima: dict[str, np.ndarray] = {}
    for batch in batches:
        real = batch["attention_mask"].astype(bool)
        values = session.run(tensors, {name: batch[name] for name in INPUT_NAMES})
        for name, value in zip(tensors, values, strict=True):
            channel_max = np.abs(value[real]).max(axis=0)
            maxima[name] = np.maximum(maxima.get(name, channel_max), channel_max)
    return maxima


def smoothing_scales(channel_max: np.ndarray, alpha: float) -> np.ndarray:
    """Divisors of the input channels: ``(max / median max) ** alpha`` for channels above the
    median, 1 for the rest, rounded to powers of two.

    Powers of two make ``x / s`` and ``W * s`` exact in float32, so the smoothed fp32 graph
    computes the same logits, and tiny calibration differences between machines rarely change
    a scale. Channels are only shrunk, never amplified: a channel that was quiet in calibration
    cannot blow up the quantisation range at serving time.
    """
    ratio = channel_max / max(float(np.median(channel_max)), np.finfo(np.float32).tiny)
    return np.exp2(np.round(alpha * np.log2(np.maximum(ratio, 1.0)))).astype(np.float32)


def smooth_feed_forward(
    source: Path, target: Path, batches: list[dict[str, np.ndarray]], alpha: float
) -> int:
    """Write ``source`` with its feed-forward inputs smoothed (SmoothQuant, Xiao et al. 2023).

    int8 dynamic quantisation gives each activation tensor one scale, so a few outlier channels
    (BERT's LayerNorm and GELU outputs have them) leave the other channels a handful of levels.
    Each feed-forward input channel is divided by :func:`smoothing_scales` of its maximum over
    ``batches`` (a ``Mul`` node before the MatMul) and the matching weight row multiplied by
    it: the same function, with a range 8-bit activations can resolve (settings: docs/int8.md).
    Returns how many input tensors were smoothed.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    groups = feed_forward_inputs(model.graph)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        maxima = activation_maxima(model, list(groups), batches, Path(tmp))
    weights = {init.name: init for init in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        readers = groups.pop(node.input[0], None) if node.op_type == "MatMul" else None
        if readers is not None:  # first reader of a smoothed tensor: insert its Mul here
            name = node.input[0]
            scales = smoothing_scales(maxima[name], alpha)
            model.graph.initializer.append(
                numpy_helper.from_array(np.float32(1.0) / scales, f"{name}.smooth_inverse")
            )
            nodes.append(
                onnx.helper.make_node(
                    "Mul", [name, f"{name}.smooth_inverse"], [f"{name}.smoothed"], f"{name}.smooth"
                )
            )
            for reader in readers:
                weight = weights[reader.input[1]]
                scaled = numpy_helper.to_array(weight) * scales[:, None]
                weight.CopyFrom(numpy_helper.from_array(scaled, weight.name))
                reader.input[0] = f"{name}.smoothed"
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    save_with_side_file(model, target)
    return len(maxima)


def quantize_int8(
    source: Path,
    target: Path,
    cfg: ExportParams,
    calibration: list[dict[str, np.ndarray]] | None = None,
) -> Path:
    """Dynamic int8 quantisation: int8 weights of MatMul/Gemm, activations quantised at run time.

    With ``cfg.int8_smooth_alpha`` > 0 the feed-forward inputs are first smoothed with scales
    from the ``calibration`` batches (:func:`smooth_feed_forward`). ``cfg.int8_per_channel`` and
    ``cfg.int8_fp32_ffn_down`` trade a little speed for agreement with fp32;
    ``cfg.int8_reduce_range`` keeps the weights in [-64, 64] so that ONNX Runtime's AVX2 kernel
    (int16 sums of u8 x s8 pairs) cannot saturate, where the VNNI one cannot either.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = ffn_down_projections(source) if cfg.int8_fp32_ffn_down else []
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        graph = source
        if cfg.int8_smooth_alpha > 0:
            if not calibration:
                raise ValueError("int8 smoothing (export.int8_smooth_alpha > 0) needs calibration")
            graph = Path(tmp) / source.name
            smooth_feed_forward(source, graph, calibration, cfg.int8_smooth_alpha)
        quantize_dynamic(
            str(graph),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=cfg.int8_per_channel,
            reduce_range=cfg.int8_reduce_range,
            nodes_to_exclude=keep,
        )
    return target
