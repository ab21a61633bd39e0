"""Training RAGRouter's network: minibatches of similar length, early stopping on validation
APGR (or loss), and the final weights averaged over the best epochs."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ragrouter.evaluation.metrics import apgr_of_gains
from ragrouter.features.query_features import QueryFeatures
from ragrouter.routers.ragrouter.config import TrainingConfig
from ragrouter.routers.ragrouter.network import NetBatch, RAGRouterNet

SCORING_BATCH = 256
Collated = list[tuple[np.ndarray, NetBatch]]  # batches, each with the positions in its rows it fills


@dataclass
class TrainingRun:
    """What training leaves besides the weights: per-epoch records, the averaged epochs, and
    the validation rows (empty when the split has no room for one)."""

    history: list[dict[str, float]]
    averaged_epochs: list[int]
    validation_rows: np.ndarray


def length_batches(rows: np.ndarray, lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Minibatches of rows with similar token counts (little padding in attention); rows of
    near-equal length are shuffled between batches."""
    jittered = lengths[rows] + rng.uniform(0, 8, size=len(rows))
    ordered = rows[np.argsort(jittered)]
    batches = [ordered[start : start + size] for start in range(0, len(ordered), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of several checkpoints of one training run: smoother than any one of them."""
    return {name: torch.stack([state[name].float() for state in states]).mean(0).to(tensor.dtype) for name, tensor in states[0].items()}


def collated(features: QueryFeatures, rows: np.ndarray, retrieval: np.ndarray) -> Collated:
    """Scoring batches of `rows` with similar token counts (little padding)."""
    by_length = np.argsort(np.diff(features.arrays["token_offsets"])[rows], kind="stable")
    chunks = [by_length[start : start + SCORING_BATCH] for start in range(0, len(rows), SCORING_BATCH)]
    return [(chunk, NetBatch.collate(features, rows[chunk], retrieval)) for chunk in chunks]


def logits_of(forward: Callable[[NetBatch], torch.Tensor], batches: Collated, n_rows: int) -> torch.Tensor:
    """The logits of `forward` (the network in eval mode while it trains, its traced graph once trained)."""
    logits = torch.zeros(n_rows)
    with torch.inference_mode():
        for positions, batch in batches:
            logits[positions] = forward(batch)
    return logits


def train_network(
    net: RAGRouterNet, features: QueryFeatures, retrieval: np.ndarray, gain: np.ndarray, targets: np.ndarray, config: TrainingConfig
) -> TrainingRun:
    """Train `net` in place on every query but a seeded validation split; its final weights
    average the `average_checkpoints` best epochs'. Dropout draws from torch's generator as
    the caller left it (seeded before the network was built)."""
    targets_t = torch.from_numpy(targets)
    order = np.random.default_rng(config.seed).permutation(len(gain))
    n_val = int(round(config.validation_fraction * len(order)))
    val, fit = np.sort(order[:n_val]), order[n_val:]
    lengths = np.diff(features.arrays["token_offsets"])
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    # Batches are collated once (the encoder is frozen, so their inputs never change); each
    # epoch visits them in a new order.
    batches = [
        (NetBatch.collate(features, rows, retrieval), targets_t[rows])
        for rows in length_batches(fit, lengths, config.batch_size, np.random.default_rng(config.seed))
    ]
    val_batches = collated(features, val, retrieval)
    kept: list[tuple[float, int, dict[str, torch.Tensor]]] = []  # (quality, epoch, weights), best first
    stale, history = 0, []
    progress = tqdm(range(config.epochs), desc="ragrouter training", leave=False)
    for epoch in progress:
        net.train()
        losses = []
        for b in np.random.default_rng(config.seed + epoch).permutation(len(batches)):
            batch, batch_targets = batches[b]
            loss = loss_fn(net(batch), batch_targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
        if n_val:
            net.eval()
            logits = logits_of(net, val_batches, n_val)
            record["val_loss"] = float(loss_fn(logits, targets_t[val]))
            record["val_apgr"] = apgr_of_gains(logits.numpy(), gain[val])
        history.append(record)
        progress.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "epoch"})
        quality = _quality(record, config)
        stale = 0 if not kept or quality > kept[0][0] + 1e-4 else stale + 1
        kept = sorted([*kept, (quality, epoch + 1, copy.deepcopy(net.state_dict()))], key=lambda item: -item[0])
        kept = kept[: config.average_checkpoints]
        if stale >= config.patience:
            break
    net.load_state_dict(average_weights([weights for _, _, weights in kept]))
    return TrainingRun(history, sorted(epoch for _, epoch, _ in kept), val)


def _quality(record: dict[str, float], config: TrainingConfig) -> float:
    """What early stopping maximises: validation APGR, or minus a loss (training loss when
    there is no validation split); an undefined APGR counts as worst."""
    if "val_loss" not in record:
        return -record["train_loss"]
    if config.early_stopping == "val_loss":
        return -record["val_loss"]
    return record["val_apgr"] if np.isfinite(record["val_apgr"]) else -np.inf
