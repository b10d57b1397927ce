"""One-job gradient transformations; the named optimizers chain them.

Notation (the lecture's): ``g`` the gradient, ``theta`` the parameters, ``eta``
the learning rate, ``gamma`` the momentum coefficient, ``beta1``/``beta2`` the
moment decay rates, ``epsilon`` the stabiliser. Each transform maps incoming
updates ``u`` (the gradient, at the head of a chain) to outgoing ones.

State field names follow ``torch.optim`` (``momentum_buffer``, ``exp_avg``,
``exp_avg_sq``, ``sum``, ...), so the torch adapter's ``state_dict`` reads like
torch's own and the parity tests compare field by field. ``step`` counts the
updates applied so far; it is a Python int (all configurations of a batched run
step together), which keeps bias corrections as exact as torch's. Compiled
updates (:mod:`optviz.optim.compiled`) pass it as a 0-d tensor instead, so no
transform branches on its value in Python, and the scalars derived from it go
through :func:`~optviz.optim.ops.hoist`.

Hyperparameters may be floats or arrays that broadcast against the parameters:
with parameters of shape (B, 2) and ``lr`` of shape (B, 1) one call steps B
configurations.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Union

from .base import IDENTITY, EmptyState, GradientTransformation
from .ops import add_scaled, add_square, copy, ema, ema_square, hoist, momentum_sum, scaled_ratio
from .tree import namespace, tree_leaves, tree_map

Scalar = Union[float, Any]  # a float, or an array that broadcasts against the parameters
ScalarOrSchedule = Union[Scalar, Callable[[int], Scalar]]

__all__ = [
    "add_l2_penalty", "add_decayed_weights", "clip_by_global_norm", "clip_by_value",
    "trace", "lookahead_trace", "scale", "scale_by_learning_rate", "scale_by_schedule", "scale_by_adagrad",
    "scale_by_rms", "scale_by_adadelta", "scale_by_adam", "scale_by_nadam",
    "scale_by_radam", "scale_by_lion",
]


def _zeros(tree):
    return tree_map(lambda p: namespace(p).zeros_like(p), tree)


def _sqrt(x):
    return namespace(x).sqrt(x)


def _stateless(fn: Callable[[Any, Any], Any]) -> GradientTransformation:
    """A transform whose update is ``fn(updates, params)`` and that remembers nothing."""
    return GradientTransformation(lambda params: EmptyState(), lambda u, s, p=None: (fn(u, p), s))


# --- regularisation and clipping -------------------------------------------------

def add_l2_penalty(weight_decay: Scalar) -> GradientTransformation:
    """Coupled weight decay (L2 penalty in the loss): ``u <- u + lambda * theta``.

    This is ``weight_decay`` of torch's SGD, Adam, Adagrad, RMSprop, ... It goes
    first in a chain, so the decay term passes through the adaptive scaling.
    """
    if _is_zero(weight_decay):
        return IDENTITY
    return _stateless(lambda u, p: tree_map(lambda g, w: add_scaled(g, w, weight_decay), u, p))


def add_decayed_weights(weight_decay: Scalar) -> GradientTransformation:
    """Decoupled weight decay (Loshchilov & Hutter, 2019): ``u <- u + lambda * theta``
    added *after* the adaptive scaling, so the decay is not rescaled by it. Put it
    just before :func:`scale_by_learning_rate`: ``theta <- theta - eta (u + lambda theta)``.
    """
    return add_l2_penalty(weight_decay)  # the same sum; what differs is where it sits


def clip_by_global_norm(max_norm: float, eps: float = 1e-6, batch_dims: int = 0) -> GradientTransformation:
    """Rescale all updates together so their joint L2 norm is at most ``max_norm``.

    ``u <- u * min(1, max_norm / (||u|| + eps))``, exactly as
    ``torch.nn.utils.clip_grad_norm_``. With ``batch_dims=k`` the first ``k`` axes
    index independent configurations (the 2-D engine's batch) and each gets its own norm.
    """

    def update(u, state, params=None):
        leaves = tree_leaves(u)
        xp = namespace(leaves[0])
        axes = lambda x: tuple(range(batch_dims, x.ndim))  # noqa: E731
        sq = sum((x * x).sum(axis=axes(x), keepdims=True) if batch_dims else (x * x).sum() for x in leaves)
        coef = max_norm / (_sqrt(sq) + eps)
        coef = xp.clip(coef, None, 1.0) if xp.__name__ == "numpy" else coef.clamp(max=1.0)
        return tree_map(lambda x: x * coef, u), state

    return GradientTransformation(lambda params: EmptyState(), update)


def clip_by_value(max_value: float) -> GradientTransformation:
    """Clip each coordinate to ``[-max_value, max_value]`` (``clip_grad_value_``)."""

    def clip(x):
        if namespace(x).__name__ == "numpy":
            return x.clip(-max_value, max_value)
        return x.clamp(-max_value, max_value)

    return _stateless(lambda u, p: tree_map(clip, u))


# --- learning rate -----------------------------------------------------------------

class ScheduleState(NamedTuple):
    schedule_step: int  # updates so far; its own name, so it never shadows an optimizer's ``step``


def scale(factor: Scalar) -> GradientTransformation:
    """``u <- factor * u``."""
    return _stateless(lambda u, p: tree_map(lambda x: x * factor, u))


def scale_by_learning_rate(lr: ScalarOrSchedule) -> GradientTransformation:
    """``u <- -eta_t * u``: the one place where the descent direction gets its sign.

    ``lr`` is a number, an array of per-configuration rates, or a schedule
    ``step -> eta`` (see :mod:`optviz.optim.schedules`), called with the number of
    updates applied so far. An array is read at every update (its sign taken then,
    not once here), so a caller may change its values in place between steps (a
    compiled step's rate is such an input: a new value never recompiles).
    """
    if callable(lr):
        return scale_by_schedule(lambda step: -lr(step))._replace(learning_rate=lr)
    if isinstance(lr, (int, float)):
        return scale(-lr)._replace(learning_rate=lr)
    return _stateless(lambda u, p: tree_map(lambda x: x * -lr, u))._replace(learning_rate=lr)


def scale_by_schedule(schedule: Callable[[int], Scalar]) -> GradientTransformation:
    """``u <- s(t) * u`` with ``t`` the number of updates so far."""

    def update(u, state, params=None):
        factor, = hoist(schedule(state.schedule_step))
        return tree_map(lambda x: x * factor, u), ScheduleState(state.schedule_step + 1)

    return GradientTransformation(lambda params: ScheduleState(0), update)


# --- momentum ------------------------------------------------------------------------

class TraceState(NamedTuple):
    step: int
    momentum_buffer: Any


def trace(momentum: Scalar, dampening: Scalar = 0.0, nesterov: bool = False) -> GradientTransformation:
    """Heavy-ball momentum in torch's form (the learning rate is applied afterwards).

    ``b <- gamma b + (1 - dampening) u`` (``b <- u`` on the first step, as torch),
    then ``u <- b``, or ``u <- u + gamma b`` with ``nesterov=True`` (Sutskever et
    al.'s look-ahead rewritten so the gradient is taken at the current parameters).
    """

    def init(params):
        return TraceState(0, _zeros(params))

    def update(u, state, params=None):
        if not isinstance(state.step, int):  # a tensor count (compiled updates): no branch on its value
            started = state.step.clamp(max=1.0)  # 0 on the first update, else 1
            keep, take = hoist(started * momentum, 1 - started * dampening)
            buf = tree_map(lambda b, g: b * keep + g * take, state.momentum_buffer, u)
        elif state.step == 0:
            buf = tree_map(copy, u)  # a copy: the buffer must not alias the caller's gradient
        else:
            buf = tree_map(lambda b, g: momentum_sum(b, g, momentum, dampening), state.momentum_buffer, u)
        out = tree_map(lambda g, b: add_scaled(g, b, momentum), u, buf) if nesterov else buf
        return out, TraceState(state.step + 1, buf)

    return GradientTransformation(init, update)


class LookaheadState(NamedTuple):
    velocity: Any  # -v of the lecture: the step that was last applied


def lookahead_trace(momentum: Scalar) -> GradientTransformation:
    """The lecture's Nesterov momentum, which needs the gradient at a look-ahead point.

    Placed after :func:`scale_by_learning_rate`, so incoming ``u = -eta g``:
    ``v <- gamma v + eta grad L(theta - gamma v)``; ``theta <- theta - v``.
    The state holds ``-v``; ``eval_point`` returns ``theta - gamma v``, where the
    caller must evaluate the gradient (the 2-D engine does; with torch, use the
    adapter with a closure).
    """

    def init(params):
        return LookaheadState(_zeros(params))

    def update(u, state, params=None):
        vel = tree_map(lambda v, x: v * momentum + x, state.velocity, u)
        return vel, LookaheadState(vel)

    def eval_point(params, state):
        return tree_map(lambda p, v: p + v * momentum, params, state.velocity)

    return GradientTransformation(init, update, eval_point)


# --- adaptive scalings ---------------------------------------------------------------

class AdagradState(NamedTuple):
    step: int
    sum: Any


def scale_by_adagrad(initial_accumulator_value: Scalar = 0.0, eps: Scalar = 1e-10,
                     lr_decay: Scalar = 0.0) -> GradientTransformation:
    """AdaGrad (Duchi et al., 2011): ``G <- G + g^2``; ``u <- g / (sqrt(G) + epsilon)``.

    ``lr_decay``: ``u <- u / (1 + (t - 1) lr_decay)`` at the t-th update, as torch, with
    ``t`` this transform's own count (so it counts from each parameter's first update,
    also when the decay is switched on mid-run).
    """

    def init(params):
        return AdagradState(0, tree_map(lambda p: namespace(p).zeros_like(p) + initial_accumulator_value, params))

    def update(u, state, params=None):
        acc = tree_map(add_square, state.sum, u)
        if _is_zero(lr_decay):
            out = tree_map(lambda g, s: scaled_ratio(g, s, eps=eps), u, acc)
        else:
            decay, = hoist(1 / (1 + state.step * lr_decay))
            out = tree_map(lambda g, s: scaled_ratio(g, s, eps=eps, out_scale=decay), u, acc)
        return out, AdagradState(state.step + 1, acc)

    return GradientTransformation(init, update)


class RMSState(NamedTuple):
    step: int
    square_avg: Any
    grad_avg: Any  # () unless centered


def scale_by_rms(alpha: Scalar = 0.99, eps: Scalar = 1e-8, centered: bool = False) -> GradientTransformation:
    """RMSProp (Hinton, 2012): ``s <- alpha s + (1 - alpha) g^2``; ``u <- g / (sqrt(s) + epsilon)``.

    ``centered``: also track ``m <- alpha m + (1 - alpha) g`` and divide by
    ``sqrt(s - m^2) + epsilon``, an estimate of the gradient's standard deviation.
    """

    def init(params):
        return RMSState(0, _zeros(params), _zeros(params) if centered else ())

    def update(u, state, params=None):
        sq = tree_map(lambda s, g: ema_square(s, g, alpha), state.square_avg, u)
        if centered:
            ga = tree_map(lambda m, g: ema(m, g, alpha), state.grad_avg, u)
            out = tree_map(lambda g, s, m: g / (_sqrt(s - m * m) + eps), u, sq, ga)
        else:
            ga = state.grad_avg
            out = tree_map(lambda g, s: scaled_ratio(g, s, eps=eps), u, sq)
        return out, RMSState(state.step + 1, sq, ga)

    return GradientTransformation(init, update)


class AdadeltaState(NamedTuple):
    step: int
    square_avg: Any
    acc_delta: Any


def scale_by_adadelta(rho: Scalar = 0.9, eps: Scalar = 1e-6) -> GradientTransformation:
    """Adadelta (Zeiler, 2012), unit-correct steps without a global rate:

    ``s <- rho s + (1 - rho) g^2``;
    ``u <- sqrt(d + epsilon) / sqrt(s + epsilon) * g``;
    ``d <- rho d + (1 - rho) u^2``.
    """

    def init(params):
        return AdadeltaState(0, _zeros(params), _zeros(params))

    def update(u, state, params=None):
        sq = tree_map(lambda s, g: ema_square(s, g, rho), state.square_avg, u)
        out = tree_map(lambda g, s, d: _sqrt(d + eps) / _sqrt(s + eps) * g, u, sq, state.acc_delta)
        acc = tree_map(lambda d, x: ema_square(d, x, rho), state.acc_delta, out)
        return out, AdadeltaState(state.step + 1, sq, acc)

    return GradientTransformation(init, update)


class AdamState(NamedTuple):
    step: int
    exp_avg: Any
    exp_avg_sq: Any
    max_exp_avg_sq: Any  # () unless amsgrad


def scale_by_adam(beta1: Scalar = 0.9, beta2: Scalar = 0.999, eps: Scalar = 1e-8,
                  eps_root: Scalar = 0.0, amsgrad: bool = False) -> GradientTransformation:
    """Adam (Kingma & Ba, 2015):

    ``m <- beta1 m + (1 - beta1) g``;  ``v <- beta2 v + (1 - beta2) g^2``;
    ``m_hat = m / (1 - beta1^t)``;  ``v_hat = v / (1 - beta2^t)``;
    ``u <- m_hat / (sqrt(v_hat + eps_root) + epsilon)``.

    ``eps_root`` puts a stabiliser inside the square root, as on the lecture's
    slide (``m_hat / sqrt(v_hat + epsilon)``: set ``eps=0, eps_root=epsilon``).
    The two forms agree only when the stabiliser is negligible against
    ``sqrt(v_hat)``; near zero gradients the slide's form takes smaller steps
    (its floor is ``sqrt(epsilon)``, not ``epsilon``). ``amsgrad`` divides by the
    running maximum of ``v`` (Reddi et al., 2018), as torch does.
    """

    def init(params):
        return AdamState(0, _zeros(params), _zeros(params), _zeros(params) if amsgrad else ())

    def update(u, state, params=None):
        t = state.step + 1
        m = tree_map(lambda m, g: ema(m, g, beta1), state.exp_avg, u)
        v = tree_map(lambda v, g: ema_square(v, g, beta2), state.exp_avg_sq, u)
        vmax = tree_map(lambda a, b: namespace(a).maximum(a, b), state.max_exp_avg_sq, v) if amsgrad else state.max_exp_avg_sq
        bc1 = 1 - beta1 ** t
        denom_src = vmax if amsgrad else v
        if _is_zero(eps_root):
            root_scale, out_scale = hoist(1 / (1 - beta2 ** t) ** 0.5, 1 / bc1)
            out = tree_map(lambda m, s: scaled_ratio(m, s, root_scale, eps, out_scale), m, denom_src)
        else:
            bc2, bc1 = hoist(1 - beta2 ** t, bc1)
            out = tree_map(lambda m, s: m / (_sqrt(s / bc2 + eps_root) + eps) / bc1, m, denom_src)
        return out, AdamState(t, m, v, vmax)

    return GradientTransformation(init, update)


class NAdamState(NamedTuple):
    step: int
    mu_product: Any
    exp_avg: Any
    exp_avg_sq: Any


def scale_by_nadam(beta1: Scalar = 0.9, beta2: Scalar = 0.999, eps: Scalar = 1e-8,
                   momentum_decay: Scalar = 4e-3) -> GradientTransformation:
    """NAdam (Dozat, 2016) with torch's momentum schedule:

    ``mu_t = beta1 (1 - 0.5 * 0.96^(t psi))`` (``psi`` = momentum_decay);
    ``m, v`` as in Adam; ``u <- (1 - mu_t) / (1 - prod_{i<=t} mu_i) g / d
    + mu_{t+1} / (1 - prod_{i<=t+1} mu_i) m / d`` with ``d = sqrt(v / (1 - beta2^t)) + epsilon``:
    Adam whose momentum already contains the next step's look-ahead.
    """

    def init(params):
        return NAdamState(0, 1.0, _zeros(params), _zeros(params))

    def update(u, state, params=None):
        t = state.step + 1
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_prod = state.mu_product * mu
        mu_prod_next = mu_prod * mu_next
        bc2 = 1 - beta2 ** t
        m = tree_map(lambda m, g: ema(m, g, beta1), state.exp_avg, u)
        v = tree_map(lambda v, g: ema_square(v, g, beta2), state.exp_avg_sq, u)
        c_grad, c_mom, bc2 = hoist((1.0 - mu) / (1.0 - mu_prod), mu_next / (1.0 - mu_prod_next), bc2)
        out = tree_map(lambda g, m, v: (g * c_grad + m * c_mom) / (_sqrt(v / bc2) + eps), u, m, v)
        return out, NAdamState(t, mu_prod, m, v)

    return GradientTransformation(init, update)


class RAdamState(NamedTuple):
    step: int
    exp_avg: Any
    exp_avg_sq: Any


def scale_by_radam(beta1: Scalar = 0.9, beta2: Scalar = 0.999, eps: Scalar = 1e-8) -> GradientTransformation:
    """RAdam (Liu et al., 2020): Adam whose adaptive step is switched on only once
    the variance of ``v_hat`` is tractable.

    ``rho_inf = 2/(1-beta2) - 1``; ``rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)``;
    if ``rho_t > 5``: ``u <- r_t m_hat sqrt(1 - beta2^t) / (sqrt(v) + epsilon)`` with the
    rectifier ``r_t = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t))``,
    else ``u <- m_hat`` (plain momentum SGD).
    """

    def init(params):
        return RAdamState(0, _zeros(params), _zeros(params))

    def update(u, state, params=None):
        t = state.step + 1
        m = tree_map(lambda m, g: ema(m, g, beta1), state.exp_avg, u)
        v = tree_map(lambda v, g: ema_square(v, g, beta2), state.exp_avg_sq, u)
        bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2 ** t / bc2
        if isinstance(rho_t, float):
            if rho_t > 5.0:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                out = tree_map(lambda m, v: m / bc1 * (bc2 ** 0.5 / (_sqrt(v) + eps)) * rect, m, v)
            else:
                out = tree_map(lambda m: m / bc1, m)
        else:  # per-configuration beta2, or a tensor count (compiled): choose elementwise
            xp = namespace(rho_t)
            ok = rho_t > 5.0
            safe = xp.where(ok, rho_t, 10.0)
            rect = ((safe - 4) * (safe - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * safe)) ** 0.5
            ok, rect, bc1, root_bc2 = hoist(ok, rect, bc1, bc2 ** 0.5)

            def pick(m, v):
                adaptive = m / bc1 * (root_bc2 / (_sqrt(v) + eps)) * rect
                return namespace(m).where(ok, adaptive, m / bc1)
            out = tree_map(pick, m, v)
        return out, RAdamState(t, m, v)

    return GradientTransformation(init, update)


class LionState(NamedTuple):
    step: int
    exp_avg: Any


def scale_by_lion(beta1: Scalar = 0.9, beta2: Scalar = 0.99) -> GradientTransformation:
    """Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"):

    ``u <- sign(beta1 m + (1 - beta1) g)``;  ``m <- beta2 m + (1 - beta2) g``.
    Every coordinate moves by exactly the learning rate (before weight decay).
    """

    def init(params):
        return LionState(0, _zeros(params))

    def update(u, state, params=None):
        out = tree_map(lambda m, g: namespace(g).sign(m * beta1 + g * (1 - beta1)), state.exp_avg, u)
        m = tree_map(lambda m, g: ema(m, g, beta2), state.exp_avg, u)
        return out, LionState(state.step + 1, m)

    return GradientTransformation(init, update)


def _is_zero(x) -> bool:
    return isinstance(x, (int, float)) and x == 0
