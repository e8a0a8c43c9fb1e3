"""Lightning DataModule: tokenise once, length-bucketed batches, dynamic padding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from textclf.data.prepared import LABEL, TEXT
from textclf.data.text import TextEncoder

# One example: token ids (unpadded) and the label index; ``collate`` pads a batch of them.
Example = tuple[list[int], int]


class EncodedDataset(Dataset[Example]):
    """Token id lists and label ids, tokenised once up front."""

    def __init__(self, ids: list[list[int]], labels: Sequence[int]) -> None:
        self.ids = ids
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Example:
        return self.ids[index], self.labels[index]

    @property
    def lengths(self) -> list[int]:
        """Token count of each example."""
        return [len(x) for x in self.ids]


class BucketBatchSampler(Sampler[list[int]]):
    """Shuffle, cut into pools of ``pool_batches`` batches, sort each pool by length, batch it,
    then shuffle the batches: similar lengths share a batch, so padding is small, yet the order
    stays random. Seeded per epoch, so a rerun sees the same batches."""

    def __init__(
        self, lengths: Sequence[int], batch_size: int, pool_batches: int, seed: int
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.pool = max(1, pool_batches) * batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reseed for ``epoch`` (Lightning calls this)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(len(self.lengths))
        batches: list[list[int]] = []
        for start in range(0, len(order), self.pool):
            pool = order[start : start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches.extend(
                pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)
            )
        for i in rng.permutation(len(batches)):
            yield batches[i]
        self.epoch += 1

    def __len__(self) -> int:
        pools, rest = divmod(len(self.lengths), self.pool)
        per_pool = -(-self.pool // self.batch_size)
        return pools * per_pool + -(-rest // self.batch_size)


class TextDataModule(L.LightningDataModule):
    """Train/val loaders over prepared splits, padded per batch with the shared encoder."""

    def __init__(
        self,
        encoder: TextEncoder,
        train: pd.DataFrame,
        val: pd.DataFrame,
        labels: list[str],
        batch_size: int,
        eval_batch_size: int,
        bucket_batches: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.frames = {"train": train, "val": val}
        self.label_ids = {lab: i for i, lab in enumerate(labels)}
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.bucket_batches = bucket_batches
        self.seed = seed
        self.datasets: dict[str, EncodedDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """Tokenise each split once."""
        for name, frame in self.frames.items():
            if name not in self.datasets:
                ids = self.encoder.encode(frame[TEXT].tolist())
                self.datasets[name] = EncodedDataset(ids, frame[LABEL].map(self.label_ids))

    def collate(self, batch: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
        """Pad to the longest example of the batch."""
        ids, labels = zip(*batch, strict=True)
        arrays = self.encoder.pad(ids)
        out = {k: torch.from_numpy(v) for k, v in arrays.items()}
        out["labels"] = torch.tensor(labels, dtype=torch.long)
        return out

    def train_dataloader(self) -> DataLoader[Example]:
        """Length-bucketed, shuffled training batches."""
        data = self.datasets["train"]
        if self.trainer is not None and self.trainer.world_size > 1:
            # Under DDP Lightning swaps in a DistributedSampler, which a custom batch sampler
            # would defeat: plain shuffled batches there (bucketing is a single-process speed-up).
            return DataLoader(
                data, batch_size=self.batch_size, shuffle=True, collate_fn=self.collate
            )
        sampler = BucketBatchSampler(data.lengths, self.batch_size, self.bucket_batches, self.seed)
        return DataLoader(data, batch_sampler=sampler, collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader[Example]:
        """Validation batches sorted by length (order does not change the metrics)."""
        data = self.datasets["val"]
        order = np.argsort(data.lengths, kind="stable").tolist()
        batches = [
            order[i : i + self.eval_batch_size] for i in range(0, len(order), self.eval_batch_size)
        ]
        if self.trainer is not None and self.trainer.world_size > 1:
            return DataLoader(data, batch_size=self.eval_batch_size, collate_fn=self.collate)
        return DataLoader(data, batch_sampler=batches, collate_fn=self.collate)
