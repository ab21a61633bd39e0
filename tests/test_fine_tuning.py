"""What the fine-tuned routers share: the precision they compute in, gradient clipping and a
clear stop on a loss that is not finite."""

from __future__ import annotations

import pytest
import torch

from ragrouter.precision import native_bfloat16
from ragrouter.routers.fine_tuning import compute_dtype_on, compute_precision, run_epochs


def _steepest_loss(weight: torch.nn.Parameter):
    """A loss whose gradient has norm 1000 in every step."""
    return lambda batch: 1000.0 * weight.sum() / weight.numel() ** 0.5


@pytest.mark.parametrize("max_grad_norm, moved", [(None, 1000.0), (0.3, 0.3)])
def test_max_grad_norm_bounds_each_step(max_grad_norm, moved):
    weight = torch.nn.Parameter(torch.zeros(16))
    run_epochs(4, 1, 4, 0, torch.optim.SGD([weight], lr=1.0), _steepest_loss(weight), "test", max_grad_norm)
    assert weight.norm().item() == pytest.approx(moved, rel=1e-4)


def test_a_non_finite_loss_stops_training_at_its_step_before_the_update():
    weight = torch.nn.Parameter(torch.ones(3))
    calls = []

    def batch_loss(batch):
        calls.append(batch)
        return weight.sum() * (float("nan") if len(calls) == 3 else 1.0)

    with pytest.raises(FloatingPointError, match=r"causal_llm fine-tuning: the loss is nan at step 3 of 5"):
        run_epochs(10, 1, 2, 0, torch.optim.SGD([weight], lr=0.1), batch_loss, "causal_llm fine-tuning")
    torch.testing.assert_close(weight.detach(), torch.full((3,), 1.0 - 2 * 0.1))  # two updates, no NaN


def test_auto_precision_autocasts_to_bfloat16_only_where_the_cpu_has_bfloat16_units():
    """Emulated bfloat16 (an AVX2-only CPU) fine-tunes 23x slower than float32: `auto` skips it."""
    for dtype, autocast in (("auto", native_bfloat16()), ("bfloat16", True), ("float32", False)):
        with compute_precision(dtype, "cpu"):
            assert torch.is_autocast_enabled("cpu") == autocast, dtype
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == (torch.bfloat16 if autocast else torch.float32)
    assert compute_dtype_on("auto", "cpu") == (torch.bfloat16 if native_bfloat16() else torch.float32)
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        compute_dtype_on("float16", "cpu")
