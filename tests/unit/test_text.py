"""Shared preprocessing: normalisation, encoding, padding and length-bucketed batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textclf.data.text import ModelMeta, Normalizer, TextEncoder, length_sorted_batches, softmax
from textclf.models.datamodule import BucketBatchSampler


def test_normalizer_replaces_urls_mentions_and_collapses_space() -> None:
    norm = Normalizer()
    text = "RT  @United thanks!\n see https://t.co/abc  ＦＵＬＬ"
    assert norm(text) == "RT @user thanks! see http FULL"
    assert (
        Normalizer(replace_urls=False, replace_mentions=False, lowercase=True)("@A www.x.com Hi")
        == "@a www.x.com hi"
    )


def test_meta_roundtrip(tmp_path: Path) -> None:
    meta = ModelMeta(
        labels=["a", "b"],
        max_length=16,
        pad_token_id=0,
        normalizer=Normalizer(lowercase=True),
        backbone="tiny",
    )
    meta.save(tmp_path)
    assert ModelMeta.load(tmp_path) == meta


def test_encoder_truncates_and_pads(tiny_backbone: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    meta = ModelMeta(labels=["a", "b"], max_length=8, pad_token_id=tok.pad_token_id)
    enc = TextEncoder(tok.backend_tokenizer, meta)
    ids = enc.encode(["great", "the the the the the the the the the the the"])
    assert len(ids[0]) == 3  # [CLS] great [SEP]
    assert len(ids[1]) == 8  # truncated to max_length, special tokens included
    batch = enc.pad(ids)
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].sum(axis=1).tolist() == [3, 8]
    assert batch["input_ids"][0, 3:].tolist() == [tok.pad_token_id] * 5
    # the saved tokenizer.json reproduces the same ids (what serving loads)
    tok.save_pretrained(tiny_backbone.parent / "saved")
    meta.save(tiny_backbone.parent / "saved")
    assert TextEncoder.from_dir(tiny_backbone.parent / "saved").encode(["great"]) == ids[:1]


def test_length_sorted_batches_cover_every_index_once() -> None:
    lengths = [5, 1, 9, 3, 3, 7, 2]
    batches = length_sorted_batches(lengths, 3)
    flat = np.concatenate(batches).tolist()
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)


def test_bucket_sampler_is_a_seeded_permutation_with_similar_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, size=1000).tolist()
    sampler = BucketBatchSampler(lengths, batch_size=10, pool_batches=20, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    assert spread < 10  # random batches of 10 from 1..99 would spread ~80
    again = BucketBatchSampler(lengths, batch_size=10, pool_batches=20, seed=1)
    assert list(again) == batches  # same seed, same epoch: same batches
    assert list(sampler) != batches  # next epoch reshuffles


def test_softmax_is_stable() -> None:
    probs = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs[0, 0] == 1.0
