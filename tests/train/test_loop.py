"""train_epoch and evaluate on hand-made batches: metrics, NaN detection, view averaging."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ean.train import (
    NonFiniteLossError,
    build_optimizer,
    build_scheduler,
    evaluate,
    resolve_trainer_config,
    train_epoch,
)

CPU = torch.device("cpu")


class Pooled(nn.Module):
    """(N, T, L, 3, H, W) -> (N, K): mean over everything but the channel, then a linear layer."""

    def __init__(self, num_classes: int = 3, nan_at_call: int | None = None):
        super().__init__()
        self.fc = nn.Linear(3, num_classes)
        self.calls, self.nan_at_call = 0, nan_at_call

    def forward(self, x):
        self.calls += 1
        logits = self.fc(x.mean(dim=(1, 2, 4, 5)))
        return logits * float("nan") if self.calls == self.nan_at_call else logits


def _batches(n: int, batch: int = 2, views: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, views, 4, 1, 3, 8, 8) if views > 1 else (batch, 4, 1, 3, 8, 8)
    batches = []
    for i in range(n):
        clips, labels = torch.randn(shape, generator=g), torch.randint(3, (batch,), generator=g)
        batches.append((clips, labels, torch.arange(i * batch, (i + 1) * batch)))
    return batches


def _optim(model, steps=4, **trainer):
    cfg = resolve_trainer_config({"epochs": 1, "lr": 0.1, **trainer})
    optimizer = build_optimizer(model, cfg)
    return optimizer, build_scheduler(optimizer, cfg, steps)


def test_train_epoch_metrics_and_max_steps():
    model = Pooled()
    optimizer, scheduler = _optim(model)
    stats = train_epoch(model, _batches(4), optimizer, scheduler, CPU, epoch=1, clip_grad=1.0, max_steps=3)
    assert stats["steps"] == 3 and stats["clips"] == 6
    assert stats["train_loss"] > 0 and 0 <= stats["train_top1"] <= 100 and stats["clips_per_s"] > 0
    assert scheduler.last_epoch == 3


def test_accumulated_batches_make_the_step_of_their_concatenation():
    """Two batches of 2 accumulated = one batch of 4: the same gradient, the same weights after the step."""
    torch.manual_seed(0)
    accumulated, whole = Pooled(), Pooled()
    whole.load_state_dict(accumulated.state_dict())
    batches = _batches(4)
    joined = [
        (torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]]), torch.cat([a[2], b[2]]))
        for a, b in zip(batches[::2], batches[1::2], strict=True)
    ]
    stats = []
    for model, loader, accumulation in ((accumulated, batches, 2), (whole, joined, 1)):
        optimizer, scheduler = _optim(model, steps=2, momentum=0.0, param_groups="uniform")
        stats.append(train_epoch(model, loader, optimizer, scheduler, CPU, epoch=1, accumulation=accumulation))
    assert stats[0]["steps"] == stats[1]["steps"] == 2 and stats[0]["clips"] == stats[1]["clips"] == 8
    assert stats[0]["train_loss"] == pytest.approx(stats[1]["train_loss"], rel=1e-6)
    assert torch.allclose(accumulated.fc.weight, whole.fc.weight, atol=1e-7)
    assert not torch.allclose(accumulated.fc.weight, Pooled().fc.weight)


def test_an_incomplete_accumulation_group_is_not_trained():
    model = Pooled()
    optimizer, scheduler = _optim(model, steps=1)
    stats = train_epoch(model, _batches(3), optimizer, scheduler, CPU, epoch=1, accumulation=2)
    assert stats["steps"] == 1 and stats["clips"] == 4 and model.calls == 2


def test_tsn_parameter_groups():
    """The authors' policy: weights decay at lr x1; biases lr x2 without decay; BatchNorm without decay."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    optimizer, _ = _optim(model, weight_decay=5e-4)
    groups = [(g["lr"], g["weight_decay"], {id(p) for p in g["params"]}) for g in optimizer.param_groups]
    ids = lambda *ps: {id(p) for p in ps}  # noqa: E731
    assert groups == [
        (0.1, 5e-4, ids(model[0].weight, model[3].weight)),
        (0.2, 0.0, ids(model[0].bias, model[3].bias)),
        (0.1, 0.0, ids(model[1].weight, model[1].bias)),
    ]
    uniform, _ = _optim(model, weight_decay=5e-4, param_groups="uniform")
    assert len(uniform.param_groups) == 1 and uniform.param_groups[0]["weight_decay"] == 5e-4


def test_non_finite_loss_names_epoch_and_step():
    model = Pooled(nan_at_call=3)
    optimizer, scheduler = _optim(model)
    with pytest.raises(NonFiniteLossError, match=r"loss nan at epoch 7, step 3") as info:
        train_epoch(model, _batches(4), optimizer, scheduler, CPU, epoch=7)
    assert (info.value.epoch, info.value.step) == (7, 3) and math.isnan(info.value.loss)
    assert isinstance(info.value, RuntimeError)


def test_bf16_autocast_on_cpu():
    model = Pooled()
    optimizer, scheduler = _optim(model)
    stats = train_epoch(model, _batches(2), optimizer, scheduler, CPU, epoch=1, amp_dtype=torch.bfloat16)
    assert math.isfinite(stats["train_loss"]) and model.fc.weight.dtype == torch.float32


def test_evaluate_averages_the_logits_over_views_as_the_authors_test_code():
    """``test_models.py`` of the authors' code: ``np.mean`` of the network's raw outputs over the clips."""
    model = Pooled().eval()
    batches = _batches(3, batch=2, views=6)
    result = evaluate(model, batches, CPU, max_clips_per_forward=5, class_names=["a", "b", "c"])
    with torch.no_grad():
        expected = torch.cat([model(c.flatten(0, 1)).view(2, 6, 3).mean(1).softmax(-1) for c, _, _ in batches])
    labels = torch.cat([y for _, y, _ in batches])
    assert result["views"] == 6 and result["num_videos"] == 6
    assert torch.allclose(torch.from_numpy(result["scores"]), expected, atol=1e-6)
    assert result["val_loss"] == pytest.approx(float(-expected[range(6), labels].log().mean()), rel=1e-5)
    assert result["val_top1"] == pytest.approx(100 * float((expected.argmax(1) == labels).float().mean()))
    assert result["val_top5"] == 100.0  # K = 3 < 5
    assert result["video_index"].tolist() == list(range(6)) and result["class_names"] == ["a", "b", "c"]


class Confident(nn.Module):
    """Logits 0 for class 0, -110 for class 9 and -200 for the rest, whatever the clip (10 classes)."""

    def forward(self, x):
        logits = torch.full((x.shape[0], 10), -200.0)
        logits[:, 0], logits[:, 9] = 0.0, -110.0
        return logits


def test_top5_ranks_classes_whose_probabilities_underflow_float32():
    """exp(-110) is 0 in float32, as is exp(-200): ranked on the saved probabilities, class 9 would tie with
    the seven others at 0 and fall behind them by index; its log-probability ranks it second."""
    batches = [(torch.zeros(2, 4, 1, 3, 8, 8), torch.tensor([9, 9]), torch.arange(2))]
    result = evaluate(Confident(), batches, CPU)
    assert result["scores"][0, 9] == 0.0  # what the scores file holds
    assert result["val_top1"] == 0.0 and result["val_top5"] == 100.0
    assert result["val_loss"] == pytest.approx(110.0)


class Recording(Pooled):
    """Pooled, keeping every input it is given."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return super().forward(x)


def test_training_and_evaluation_normalise_uint8_clips_identically():
    from ean.data import normalize_clips

    g = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 256, (2, 4, 1, 3, 8, 8), dtype=torch.uint8, generator=g)
    batch = [(clips, torch.tensor([0, 1]), torch.arange(2))]
    model = Recording()
    train_epoch(model, batch, *_optim(model, steps=1), CPU, epoch=1)
    evaluate(model, batch, CPU)
    trained_on, evaluated_on = model.inputs
    assert trained_on.dtype == torch.float32 and torch.equal(trained_on, evaluated_on)
    assert torch.equal(trained_on, normalize_clips(clips))
    assert -2.2 < float(trained_on.min()) < -1.7 and 2.2 < float(trained_on.max()) < 2.7  # ImageNet statistics


def test_the_soi_trs_final_scale_and_shift_train_as_the_batchnorm_they_stand_for():
    """The authors end the SOI-Tr with a BatchNorm1d (scale and shift without weight decay); its stand-in, a
    per-channel affine map, trains the same way. Its positional embedding decays, as in the authors' policy."""
    from ean.models import build_model
    from ean.models.soi.soi_tr import SOITransformer

    model = build_model({"backbone": "resnet18", "num_segments": 4, "input_size": 64, "num_classes": 10,
                         "block": "eab", "regions": "saliency"})  # fmt: skip
    optimizer, _ = _optim(model, weight_decay=5e-4)
    decay = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    sois = [m for m in model.modules() if isinstance(m, SOITransformer)]
    assert sois
    for soi in sois:
        assert decay[id(soi.out_scale)] == decay[id(soi.out_shift)] == (0.1, 0.0)
        assert decay[id(soi.pos_embed)] == (0.1, 5e-4) and decay[id(soi.out.weight)] == (0.1, 5e-4)
    assert len(decay) == sum(1 for p in model.parameters() if p.requires_grad)
