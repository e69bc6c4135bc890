"""ean.train: a trial as plain functions: build from a config, train epochs, evaluate, checkpoint, ensemble.

Public API::

    fit(config, workdir, reporter=None) -> dict       one trial: train, evaluate, checkpoint, resume, report
    train_epoch(model, loader, optimizer, scheduler, device, *, epoch, ...) -> dict
    evaluate(model, loader, device, *, amp_dtype=None, ...) -> dict   per-video scores over a test protocol
    ensemble(score_files, out=None) -> dict           top-1/top-5 of trials' averaged softmax scores
    TRAINER_DEFAULTS, resolve_trainer_config(cfg)     the trainer section (the paper's recipe by default)
    build_optimizer, build_scheduler                  SGD with momentum; step or cosine, warm-up
    save_checkpoint, load_checkpoint, read_scores, write_scores
    read_starts(workdir) -> list[dict]                each attempt's start: first epoch trained, resumed?, pid
    NonFiniteLossError, ResumeError, TrainerConfigError, EnsembleError

Never imports ray, mlflow or hydra: the runner passes a plain dict and a reporter callable.
"""

from ean.train.build import resolve_config
from ean.train.checkpoint import load_checkpoint, save_checkpoint
from ean.train.config import TRAINER_DEFAULTS, TrainerConfigError, resolve_trainer_config
from ean.train.ensemble import EnsembleError, ensemble
from ean.train.errors import NonFiniteLossError, ResumeError
from ean.train.evaluate import evaluate
from ean.train.fit import fit, read_starts
from ean.train.loop import train_epoch
from ean.train.optim import build_optimizer, build_scheduler
from ean.train.scores import read_scores, write_scores

__all__ = [
    "TRAINER_DEFAULTS",
    "EnsembleError",
    "NonFiniteLossError",
    "ResumeError",
    "TrainerConfigError",
    "build_optimizer",
    "build_scheduler",
    "ensemble",
    "evaluate",
    "fit",
    "load_checkpoint",
    "read_scores",
    "read_starts",
    "resolve_config",
    "resolve_trainer_config",
    "save_checkpoint",
    "train_epoch",
    "write_scores",
]
