"""The named optimizers: short chains of :mod:`~optviz.optim.transforms`.

Defaults equal ``torch.optim``'s, so ``adam()`` here and ``torch.optim.Adam``
take the same steps (the parity tests check it to 1e-10 in float64). Each is
entered in the registry where it is defined; the registry's colour is the one
every figure uses for it. Colours: Okabe & Ito's colour-blind-safe palette for
the lecture's five and their next steps, Paul Tol's muted palette for the rest.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidValue
from .base import GradientTransformation, chain
from .table import register
from .transforms import (
    add_decayed_weights, add_l2_penalty, lookahead_trace, scale_by_adadelta, scale_by_adagrad, scale_by_adam,
    scale_by_learning_rate, scale_by_lion, scale_by_nadam, scale_by_radam, scale_by_rms, trace,
)

__all__ = ["sgd", "momentum", "nesterov", "nesterov_lookahead", "adagrad", "adam", "adamw",
           "amsgrad", "nadam", "radam", "rmsprop", "adadelta", "lion"]


# --- validation: a bad value names the parameter and the value -----------------------

def _values(value) -> np.ndarray:
    return np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=float)


def _check(name: str, value: Any, ok, requirement: str) -> None:
    if callable(value):  # a schedule: checked by whoever built it
        return
    arr = _values(value)
    if not np.all(np.isfinite(arr)) or not np.all(ok(arr)):
        raise InvalidValue(f"invalid {name}={value!r}: {name} must be {requirement}")


def _nonneg(**kw):
    for k, v in kw.items():
        _check(k, v, lambda a: a >= 0, ">= 0")


def _positive(**kw):
    for k, v in kw.items():
        _check(k, v, lambda a: a > 0, "> 0")


def _unit(**kw):
    for k, v in kw.items():
        _check(k, v, lambda a: (a >= 0) & (a < 1), "in [0, 1)")


# --- the lecture's five ----------------------------------------------------------------

@register("sgd", display="SGD", colour="#0072B2", description="plain (stochastic) gradient descent")
def sgd(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False) -> GradientTransformation:
    """Stochastic gradient descent, with torch's optional momentum.

    Update rule:
        theta <- theta - eta * g

    With ``momentum`` (gamma) > 0 it is torch's ``SGD``: ``b <- gamma b + (1 - dampening) g``,
    ``theta <- theta - eta b`` (or ``- eta (g + gamma b)`` with ``nesterov``);
    see :func:`momentum` and :func:`nesterov`. ``weight_decay`` adds ``lambda theta`` to ``g``.
    """
    _nonneg(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
    if nesterov and (_is_off(momentum) or not _is_off(dampening)):
        raise InvalidValue("nesterov=True needs momentum > 0 and dampening = 0")
    parts = [add_l2_penalty(weight_decay)]
    if not _is_off(momentum):
        parts.append(trace(momentum, dampening, nesterov))
    parts.append(scale_by_learning_rate(lr))
    return chain(*parts)


@register("momentum", display="Momentum", colour="#E69F00",
          description="heavy-ball momentum (Polyak, 1964): a velocity that remembers past gradients")
def momentum(lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0) -> GradientTransformation:
    """Heavy-ball momentum, in torch's form.

    Update rule:
        b <- gamma * b + g
        theta <- theta - eta * b

    The lecture writes ``v <- gamma v + eta g; theta <- theta - v``. With ``v = eta b``
    the two give the same iterates while eta is constant; under a learning-rate
    schedule they differ (the lecture's form keeps old steps at their old rate,
    torch's rescales the whole velocity at once). ``gamma`` defaults to the
    lecture's 0.9 (torch's ``SGD`` has momentum 0, i.e. off, by default).
    """
    return sgd(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)


@register("nesterov", display="Nesterov", colour="#009E73",
          description="Nesterov accelerated gradient, torch's reformulation (gradient at theta)")
def nesterov(lr=1e-3, momentum=0.9, weight_decay=0.0) -> GradientTransformation:
    """Nesterov's accelerated gradient (NAG) as torch computes it.

    Update rule:
        b <- gamma * b + g
        theta <- theta - eta * (g + gamma * b)

    The lecture's form ``v <- gamma v + eta grad L(theta - gamma v); theta <- theta - v``
    needs the gradient at a look-ahead point (:func:`nesterov_lookahead`). Tracking
    ``phi = theta - gamma v`` instead of ``theta`` turns it into this rule with
    ``v = eta b``: the iterates here are the lecture's look-ahead points.
    """
    _positive(momentum=momentum)
    return sgd(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)


@register("adagrad", display="AdaGrad", colour="#CC79A7",
          description="per-coordinate rates that shrink with the sum of squared gradients",
          reference="Duchi, Hazan & Singer, JMLR 2011")
def adagrad(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10) -> GradientTransformation:
    """AdaGrad.

    Update rule:
        G <- G + g^2
        theta <- theta - eta / (sqrt(G) + epsilon) * g

    As torch: ``eta_t = eta / (1 + (t - 1) * lr_decay)`` at a parameter's t-th update;
    epsilon outside the square root.
    """
    _nonneg(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=initial_accumulator_value)
    _positive(eps=eps)
    return chain(add_l2_penalty(weight_decay), scale_by_adagrad(initial_accumulator_value, eps, lr_decay),
                 scale_by_learning_rate(lr))


@register("adam", display="Adam", colour="#D55E00",
          description="momentum plus per-coordinate RMS scaling, bias-corrected",
          reference="Kingma & Ba, ICLR 2015")
def adam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, eps_root=0.0) -> GradientTransformation:
    """Adam.

    Update rule:
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
        theta <- theta - eta * m_hat / (sqrt(v_hat) + epsilon)

    torch's form (epsilon outside the root). The lecture's slide puts epsilon inside,
    ``m_hat / sqrt(v_hat + epsilon)``: use ``eps=0, eps_root=1e-8``. The two agree
    when ``epsilon`` is negligible against ``sqrt(v_hat)`` (resp. ``v_hat``), i.e.
    everywhere but at near-zero gradients. ``weight_decay`` is coupled (L2 added to g);
    for decoupled decay use :func:`adamw`.
    """
    _nonneg(lr=lr, weight_decay=weight_decay, eps=eps, eps_root=eps_root)
    _unit(beta1=beta1, beta2=beta2)
    if _is_off(eps) and _is_off(eps_root):
        raise InvalidValue("invalid eps=0 with eps_root=0: one of them must be > 0")
    return chain(add_l2_penalty(weight_decay), scale_by_adam(beta1, beta2, eps, eps_root, amsgrad),
                 scale_by_learning_rate(lr))


# --- next steps named by the lecture, and some of their relatives ----------------------

@register("rmsprop", display="RMSProp", colour="#56B4E9",
          description="divide by a running RMS of the gradients (Hinton's lecture 6e)",
          reference="Tieleman & Hinton, 2012")
def rmsprop(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False) -> GradientTransformation:
    """RMSProp, plain, centered, or with momentum (as torch).

    Update rule:
        s <- alpha * s + (1 - alpha) * g^2
        theta <- theta - eta * g / (sqrt(s) + epsilon)

    ``centered``: divide by ``sqrt(s - m^2) + epsilon`` with ``m`` the running mean of g.
    ``momentum`` gamma: ``b <- gamma b + g / (sqrt(s) + epsilon); theta <- theta - eta b``.
    """
    _nonneg(lr=lr, weight_decay=weight_decay, momentum=momentum)
    _positive(eps=eps)
    _unit(alpha=alpha)
    parts = [add_l2_penalty(weight_decay), scale_by_rms(alpha, eps, centered)]
    if not _is_off(momentum):
        parts.append(trace(momentum))
    parts.append(scale_by_learning_rate(lr))
    return chain(*parts)


@register("adadelta", display="Adadelta", colour="#CC6677",
          description="RMSProp with units fixed by a running RMS of past steps; needs no rate",
          reference="Zeiler, 2012")
def adadelta(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0) -> GradientTransformation:
    """Adadelta.

    Update rule:
        s <- rho * s + (1 - rho) * g^2
        dx = sqrt(d + epsilon) / sqrt(s + epsilon) * g
        d <- rho * d + (1 - rho) * dx^2
        theta <- theta - eta * dx

    ``eta`` = 1 is the paper's method; torch keeps it as a multiplier.
    """
    _nonneg(lr=lr, weight_decay=weight_decay)
    _positive(eps=eps)
    _check("rho", rho, lambda a: (a >= 0) & (a <= 1), "in [0, 1]")
    return chain(add_l2_penalty(weight_decay), scale_by_adadelta(rho, eps), scale_by_learning_rate(lr))


@register("nadam", display="NAdam", colour="#882255",
          description="Adam with Nesterov momentum", reference="Dozat, ICLR workshop 2016")
def nadam(lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
          decoupled_weight_decay=False) -> GradientTransformation:
    """NAdam, with torch's momentum warm-up schedule ``mu_t``.

    Update rule:
        mu_t = beta1 * (1 - 0.5 * 0.96^(t * psi))
        m, v as in Adam;  d = sqrt(v / (1 - beta2^t)) + epsilon
        theta <- theta - eta * [(1 - mu_t) / (1 - prod mu_1..t) * g
                                + mu_{t+1} / (1 - prod mu_1..t+1) * m] / d
    """
    _nonneg(lr=lr, weight_decay=weight_decay, momentum_decay=momentum_decay)
    _positive(eps=eps)
    _unit(beta1=beta1, beta2=beta2)
    return _with_weight_decay(scale_by_nadam(beta1, beta2, eps, momentum_decay), lr, weight_decay,
                              decoupled_weight_decay)


@register("adamw", display="AdamW", colour="#AA4499",
          description="Adam with decoupled weight decay", reference="Loshchilov & Hutter, ICLR 2019")
def adamw(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2, amsgrad=False) -> GradientTransformation:
    """AdamW: Adam whose weight decay is not rescaled by the adaptive denominator.

    Update rule:
        m, v, m_hat, v_hat as in Adam
        theta <- theta - eta * (m_hat / (sqrt(v_hat) + epsilon) + lambda * theta)
    """
    _nonneg(lr=lr, weight_decay=weight_decay)
    _positive(eps=eps)
    _unit(beta1=beta1, beta2=beta2)
    return _with_weight_decay(scale_by_adam(beta1, beta2, eps, 0.0, amsgrad), lr, weight_decay, True)


@register("amsgrad", display="AMSGrad", colour="#332288",
          description="Adam that never lets its denominator shrink",
          reference="Reddi, Kale & Kumar, ICLR 2018")
def amsgrad(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0) -> GradientTransformation:
    """AMSGrad (torch's ``Adam(amsgrad=True)``).

    Update rule:
        m, v as in Adam;  v_max <- max(v_max, v)
        theta <- theta - eta * m_hat / (sqrt(v_max / (1 - beta2^t)) + epsilon)
    """
    return adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=True)


@register("radam", display="RAdam", colour="#44AA99",
          description="Adam with a rectified warm-up of its adaptive rate",
          reference="Liu et al., ICLR 2020")
def radam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
          decoupled_weight_decay=False) -> GradientTransformation:
    """RAdam.

    Update rule:
        m, v, m_hat as in Adam;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5: theta <- theta - eta * r_t * m_hat * sqrt(1 - beta2^t) / (sqrt(v) + epsilon)
        else:         theta <- theta - eta * m_hat
    """
    _nonneg(lr=lr, weight_decay=weight_decay)
    _positive(eps=eps)
    _unit(beta1=beta1, beta2=beta2)
    return _with_weight_decay(scale_by_radam(beta1, beta2, eps), lr, weight_decay, decoupled_weight_decay)


@register("lion", display="Lion", colour="#999933",
          description="sign of an interpolated momentum: every coordinate moves by eta",
          reference="Chen et al., NeurIPS 2023")
def lion(lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0) -> GradientTransformation:
    """Lion (EvoLved Sign Momentum); defaults from the paper (torch has no Lion).

    Update rule:
        c = beta1 * m + (1 - beta1) * g
        theta <- theta - eta * (sign(c) + lambda * theta)
        m <- beta2 * m + (1 - beta2) * g
    """
    _nonneg(lr=lr, weight_decay=weight_decay)
    _unit(beta1=beta1, beta2=beta2)
    return _with_weight_decay(scale_by_lion(beta1, beta2), lr, weight_decay, True)


@register("nesterov_lookahead", display="Nesterov (look-ahead)", colour="#117733",
          description="the lecture's NAG: gradient taken at the look-ahead point theta - gamma v")
def nesterov_lookahead(lr=1e-3, momentum=0.9) -> GradientTransformation:
    """Nesterov's accelerated gradient in the lecture's (Sutskever et al., 2013) form.

    Update rule:
        v <- gamma * v + eta * grad L(theta - gamma * v)
        theta <- theta - v

    The caller evaluates the gradient where ``opt.eval_point(params, state)`` says
    (the 2-D engine does so; so does the torch adapter when ``step`` gets a closure).
    Its iterates ``theta`` relate to :func:`nesterov`'s ``phi`` by ``phi = theta - gamma v``.
    """
    _nonneg(lr=lr)
    _unit(momentum=momentum)
    return chain(scale_by_learning_rate(lr), lookahead_trace(momentum))


# --- helpers ---------------------------------------------------------------------------

def _is_off(value) -> bool:
    """True for a scalar 0/False; arrays always count as on (some entries may be > 0)."""
    return not callable(value) and np.ndim(_values(value)) == 0 and float(_values(value)) == 0.0


def _with_weight_decay(scaling: GradientTransformation, lr, weight_decay, decoupled: bool) -> GradientTransformation:
    if decoupled:
        return chain(scaling, add_decayed_weights(weight_decay), scale_by_learning_rate(lr))
    return chain(add_l2_penalty(weight_decay), scaling, scale_by_learning_rate(lr))
