"""A trained router's per-epoch history (RAGRouter's losses and validation APGR) in MLflow:
metrics by step, and one PNG to look at instead of reading numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402


def log_training_curve(history: list[dict[str, float]], prefix: str = "training") -> None:
    """Log each epoch's values as `<prefix>.<name>` at step = epoch, and the curve as a figure."""
    if not history:
        return
    for record in history:
        epoch = int(record["epoch"])
        mlflow.log_metrics({f"{prefix}.{k}": float(v) for k, v in record.items() if k != "epoch"}, step=epoch)
    epochs = [r["epoch"] for r in history]
    figure, (losses, quality) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name in ("train_loss", "val_loss"):
        if name in history[0]:
            losses.plot(epochs, [r[name] for r in history], marker="o", label=name)
    losses.set(xlabel="epoch", ylabel="loss", title="loss")
    losses.legend()
    if "val_apgr" in history[0]:
        quality.plot(epochs, [r["val_apgr"] for r in history], marker="o", color="tab:green")
    quality.set(xlabel="epoch", ylabel="APGR", title="validation APGR")
    figure.tight_layout()
    mlflow.log_figure(figure, f"{prefix}_curve.png")
    plt.close(figure)
