"""When a training run has diverged: one rule, for the sequential and the stacked trainer.

A run has diverged at step ``t`` when

* its minibatch loss at ``t`` is not finite (NaN or inf), or
* its minibatch loss has been above ``factor`` times its *reference loss* for
  ``patience`` consecutive steps, ``t`` being the last of them (a finite explosion:
  a run at a loss of 1e8 and chance accuracy is not "done"), or
* at the end of an epoch, its validation loss is not finite or above ``factor``
  times the reference.

The reference loss is the run's validation loss at its initial weights (epoch 0):
about ln 10 = 2.3 for ten balanced classes, so the default threshold is a
cross-entropy of about 23, which a network only reaches with confidently wrong
logits. A diverged run is stopped (sequential) or frozen (stacked); its records
keep every step up to and including ``t``.

Example::

    rule = DivergenceRule()
    scan = rule.scanner(reference=torch.tensor([2.3, 2.3]))      # two runs
    first = scan(losses)        # losses (n, 2), the next n steps: index of divergence or -1 per run
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import InvalidValue

__all__ = ["DivergenceRule"]


@dataclass(frozen=True)
class DivergenceRule:
    factor: float = 10.0   # "exploded": a loss above factor x the reference loss ...
    patience: int = 50     # ... for this many consecutive steps

    def __post_init__(self):
        if not (isinstance(self.factor, (int, float)) and self.factor > 1):
            raise InvalidValue(f"divergence factor must be a number > 1, got {self.factor!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise InvalidValue(f"divergence patience must be an integer >= 1, got {self.patience!r}")

    def scanner(self, reference: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function ``scan(losses) -> first`` for runs with initial losses ``reference (M,)``:
        ``losses (n, M)`` are the next ``n`` steps' minibatch losses, on any device; ``first (M,)``
        is, per run, the index in this chunk where it diverged, or -1, on the CPU. The scanner
        remembers each run's streak of high losses across chunks."""
        threshold = self.factor * reference.to("cpu", torch.float64)
        streak = torch.zeros_like(threshold, dtype=torch.int64)

        def scan(losses: torch.Tensor) -> torch.Tensor:
            nonlocal streak
            # the check runs on the CPU: its caller reads the answer at once, so the losses
            # cross over once per check whatever the training device
            losses = losses.detach().to("cpu", torch.float64).reshape(len(losses), -1)
            n = len(losses)
            first = torch.full_like(streak, -1)
            if n == 0:
                return first
            bad = ~torch.isfinite(losses)                                        # (n, M)
            high = (losses > threshold) & ~bad
            # length of the run of consecutive high losses ending at each step, carried over
            idx = torch.arange(1, n + 1, dtype=torch.int64)[:, None]
            last_low = torch.where(~high, idx, torch.zeros_like(idx)).cummax(dim=0).values    # (n, M)
            run = torch.where(last_low == 0, streak[None] + idx, idx - last_low)
            exploded = run >= self.patience
            hit = bad | exploded
            any_hit = hit.any(dim=0)
            first = torch.where(any_hit, hit.to(torch.int8).argmax(dim=0), first)
            streak = run[-1]
            return first

        return scan

    def epoch_end_diverged(self, val_loss: float, reference: float) -> bool:
        """The end-of-epoch check on the validation loss."""
        return not (val_loss == val_loss and abs(val_loss) != float("inf")) or val_loss > self.factor * reference
