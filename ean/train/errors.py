"""Errors of a training run, each with a message that says what happened where."""

from __future__ import annotations


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch, the step and the loss value.

    Attributes:
        epoch: 1-based epoch.
        step: 1-based step within the epoch.
        loss: the offending loss value (this rank's).
    """

    def __init__(self, epoch: int, step: int, loss: float, detail: str = ""):
        self.epoch, self.step, self.loss = epoch, step, loss
        super().__init__(
            f"non-finite training loss {loss} at epoch {epoch}, step {step}{detail}; the trial stops here. "
            "Lower trainer.lr, add warm-up (trainer.warmup_epochs), clip gradients (trainer.clip_grad) or try "
            "trainer.amp = 'none'"
        )


class ResumeError(ValueError):
    """A checkpoint cannot continue this run (another config, format or world size); says what differs."""
