"""When is an optimizer stable on a quadratic? The limit on the curvature, per optimizer.

On a quadratic with Hessian ``H`` (eigenvalues ``lambda``), gradient descent
``theta <- theta - eta g`` multiplies the error along each eigenvector by
``1 - eta lambda``: it converges iff ``eta lambda < 2``. Heavy-ball momentum in
torch's form (``b <- gamma b + g; theta <- theta - eta b``) is the recurrence
``theta_{t+1} = theta_t - eta g_t + gamma (theta_t - theta_{t-1})``, whose roots stay
inside the unit circle iff ``eta lambda < 2 (1 + gamma)``. So each method has a limit
``lambda_max < c / eta`` with a constant ``c`` of its own:

==========================  ==========================================  =============
method                      limit                                        on
==========================  ==========================================  =============
``sgd`` (no momentum)       ``2 / eta``                                  ``H``
``momentum`` (gamma, d)     ``2 (1 + gamma) / ((1 - d) eta)``            ``H``
``nesterov`` (gamma)        ``2 (1 + gamma) / ((1 + 2 gamma) eta)``      ``H``
``adam``, ``adamw``,        ``2 (1 + beta1) / ((1 - beta1) eta)``        ``P^-1 H``
``amsgrad``                 (``38 / eta`` at beta1 = 0.9)
``rmsprop`` (momentum g)    ``2 (1 + g) / eta``                          ``P^-1 H``
``adagrad``                 ``2 / eta``                                  ``P^-1 H``
==========================  ==========================================  =============

Adaptive methods divide the step by a diagonal preconditioner ``P`` (Adam:
``P = (1 - beta1^t) (sqrt(v_hat) + eps)``, so that ``theta <- theta - eta P^-1 m``);
with ``P`` frozen they are the plain methods on ``P^-1 H``, whose eigenvalues are
those of the symmetric ``P^-1/2 H P^-1/2`` (the "preconditioned sharpness",
Cohen et al., "Adaptive gradient methods at the edge of stability", 2022). Adam's
``m`` is an average (``(1 - beta1) g`` enters), so it is heavy ball with rate
``eta (1 - beta1)`` and momentum ``beta1``: hence its constant.

Coupled weight decay ``wd`` adds ``wd I`` to ``H``; the limits here are on the
Hessian of the loss alone (``wd`` is usually tiny against ``lambda_max``).

References: Polyak (1964); Goh, "Why Momentum Really Works", Distill 2017;
Cohen et al., "Gradient descent on neural networks typically occurs at the edge
of stability", ICLR 2021.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ..optim import registry

__all__ = ["Limit", "stability_limit", "preconditioner", "PRECONDITIONED"]

#: Optimizers whose limit is on the preconditioned Hessian, and the state buffer that holds
#: the running second moment (torch's names, as the engine and the torch adapter record them).
PRECONDITIONED = {"adam": "exp_avg_sq", "adamw": "exp_avg_sq", "amsgrad": "max_exp_avg_sq",
                  "rmsprop": "square_avg", "adagrad": "sum"}


@dataclass(frozen=True)
class Limit:
    """The stability condition ``lambda_max < constant / eta`` of one optimizer setting."""

    constant: float         # c
    lr: float               # eta
    preconditioned: bool    # whether lambda is an eigenvalue of P^-1 H (else of H)
    rule: str               # the condition in words, for legends: "2(1+γ)/η"

    @property
    def value(self) -> float:
        """``c / eta``: the largest curvature the optimizer can follow."""
        return self.constant / self.lr

    def lr_for(self, lam_max: float) -> float:
        """The largest stable learning rate for curvature ``lam_max``: ``c / lambda_max``."""
        return self.constant / lam_max


def _settings(name: str, hyper: Mapping[str, Any]) -> dict:
    return dict(registry.get(name).defaults, **{k: v for k, v in hyper.items() if k not in ("clip_norm", "clip_value")})


def stability_limit(name: str, hyper: Optional[Mapping[str, Any]] = None) -> Optional[Limit]:
    """The :class:`Limit` of optimizer ``name`` with ``hyper`` (defaults filled in), or
    None where no such condition holds (Lion's sign steps, Adadelta's units, NAdam's
    schedule, a clipped step: their steps are bounded, they do not blow up).

    >>> stability_limit("momentum", {"lr": 0.01, "momentum": 0.9}).value
    380.0
    """
    hyper = dict(hyper or {})
    if "clip_norm" in hyper or "clip_value" in hyper:
        return None
    h = _settings(name, hyper)
    lr = float(h.get("lr", 0.0))
    if lr <= 0:
        return None
    if name in ("sgd", "momentum"):
        gamma, damp = float(h.get("momentum", 0.0)), float(h.get("dampening", 0.0))
        if name == "sgd" and h.get("nesterov"):
            return Limit(2 * (1 + gamma) / (1 + 2 * gamma), lr, False, "2(1+γ)/((1+2γ)η)")
        if gamma == 0:
            return Limit(2.0, lr, False, "2/η")
        if damp >= 1:
            return None
        rule = "2(1+γ)/η" if damp == 0 else "2(1+γ)/((1-d)η)"
        return Limit(2 * (1 + gamma) / (1 - damp), lr, False, rule)
    if name == "nesterov":
        gamma = float(h["momentum"])
        return Limit(2 * (1 + gamma) / (1 + 2 * gamma), lr, False, "2(1+γ)/((1+2γ)η)")
    if name in ("adam", "adamw", "amsgrad"):
        b1 = float(h["beta1"])
        return Limit(2 * (1 + b1) / (1 - b1), lr, True, "2(1+β₁)/((1-β₁)η)")
    if name == "rmsprop":
        gamma = float(h.get("momentum", 0.0))
        return Limit(2 * (1 + gamma), lr, True, "2/η" if gamma == 0 else "2(1+γ)/η")
    if name == "adagrad":
        return Limit(2.0, lr, True, "2/η")
    return None


def preconditioner(name: str, hyper: Optional[Mapping[str, Any]], state: Mapping[str, Any], step: int):
    """The diagonal ``P`` of an adaptive optimizer after ``step`` updates, from its state
    buffers (numpy arrays or torch tensors, torch's names: ``exp_avg_sq``, ``sum``, ...).

    ``P`` is what the ``step``-th (the latest) update divided by: it was
    ``theta <- theta - eta P^-1 u`` with ``u`` the momentum (or the gradient), and with
    the state frozen the next updates divide by it too. Adam
    ``P = (1 - beta1^t) (sqrt(v / (1 - beta2^t) + eps_root) + eps)``, RMSProp
    ``P = sqrt(s) + eps`` (centered: ``sqrt(s - mean^2) + eps``), AdaGrad
    ``P = (1 + (t - 1) lr_decay) (sqrt(G) + eps)``. Returns None for a method without
    one, or before the first update (``step == 0``: nothing is known yet).
    """
    if name not in PRECONDITIONED or step <= 0:
        return None
    h = _settings(name, hyper or {})
    v = state[PRECONDITIONED[name] if not (name == "adam" and h.get("amsgrad")) else "max_exp_avg_sq"]
    if name in ("adam", "adamw", "amsgrad"):
        b1, b2, eps = float(h["beta1"]), float(h["beta2"]), float(h["eps"])
        root = (v / (1 - b2 ** step) + float(h.get("eps_root", 0.0))) ** 0.5
        return (1 - b1 ** step) * (root + eps)
    if name == "rmsprop":
        s = v - state["grad_avg"] ** 2 if h.get("centered") else v
        return s ** 0.5 + float(h["eps"])
    # adagrad: torch's lr_t = lr / (1 + (t - 1) lr_decay) for the t-th update
    return (1 + (step - 1) * float(h.get("lr_decay", 0.0))) * (v ** 0.5 + float(h["eps"]))
