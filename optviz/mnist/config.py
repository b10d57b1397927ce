"""What a comparison is: optimizer settings, seeds, model and protocol (:class:`TrainConfig`),
expanded into runs, one per (setting, seed); and the learning-rate schedules it can use.

:mod:`optviz.mnist.train` runs it.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ..errors import InvalidValue, OptvizError, UnknownName

__all__ = ["TrainConfig", "Entry", "RunSpec", "SCHEDULE_KINDS", "DTYPES", "TRAINERS", "LECTURE_OPTIMIZERS",
           "parse_seeds",
           "make_schedule"]

SCHEDULE_KINDS = ("constant", "cosine", "step", "warmup_cosine", "one_cycle")
DTYPES = ("float32", "float64")
TRAINERS = ("auto", "stacked", "sequential")

#: The lecture notebook's five optimizers and their settings, as optimizer specs.
LECTURE_OPTIMIZERS = (
    "sgd:lr=0.01",
    "momentum:lr=0.01,momentum=0.9",
    "nesterov:lr=0.01,momentum=0.9",
    "adagrad:lr=0.01",
    "adam:lr=0.001",
)


@dataclass
class TrainConfig:
    """One comparison. Defaults are the lecture's protocol (``--preset lecture``)."""

    optimizers: List[str] = field(default_factory=lambda: list(LECTURE_OPTIMIZERS))  # specs, "adam:lr=0.001"
    reference: bool = False  # also run torch.optim's implementation of every setting
    model: str = "mlp"  # a name of optviz.mnist.MODELS
    dataset: str = "mnist"  # "mnist" or "fashion_mnist"
    data_dir: Optional[str] = None  # default: $OPTVIZ_DATA_DIR, else the per-user cache folder
    epochs: int = 15
    batch_size: int = 32
    seeds: List[int] = field(default_factory=lambda: [0])  # initial weights and batch order of each repeat
    subset: Optional[int] = None  # train on the first N training images only
    eval_subset: Optional[int] = None  # evaluate on the first N validation / test images only
    val_size: int = 10000  # of the 60,000 training images, held out for validation
    split_seed: int = 0  # which ones (the lecture's random_split generator seed)
    schedule: str = "constant"  # learning-rate schedule over the whole run: one of SCHEDULE_KINDS
    clip_norm: Optional[float] = None  # clip the gradient's global norm (settings without their own)
    weight_decay: Optional[float] = None  # weight_decay for every setting that has one and does not set it
    snapshots: str = "landscape"  # weight snapshots: "landscape" (sparse, for the landscape), "dense", "none"
    snapshot_every: int = 50  # "dense": save the weights every k steps (and the final weights); 0: no snapshots
    snapshot_dtype: str = "float16"  # offsets from the initial weights in float16 (half the disk), or "float32"
    snapshot_val_size: int = 512  # validation images for the loss at each snapshot; 0: skip
    evals_per_epoch: int = 1  # validations per epoch, evenly spaced, the last at its end (time to target)
    eval_batch_size: int = 2000  # batch size of evaluation (no gradients)
    steps_csv: bool = True  # also write the per-step losses as steps.csv (they are in metrics.jsonl anyway)
    check_every: int = 50  # steps between divergence checks of the loss
    divergence_factor: float = 10.0  # diverged: loss above this x the initial validation loss ...
    divergence_patience: int = 50  # ... for this many consecutive steps (or a non-finite loss)
    trainer: str = "auto"  # "stacked" (all runs as one batched model), "sequential", or "auto"
    compile: Any = None  # torch.compile the optimizer updates: True, False, "auto"; None: $OPTVIZ_COMPILE (default off)
    num_threads: Optional[int] = None  # torch threads; default: 1 for sequential (batch-32 steps are too small
    # to split), the free cores for stacked (its GEMMs are large enough to share; train.free_cores)
    dtype: str = "float32"  # "float64" for exact comparisons with torch.optim
    device: str = "cpu"
    preset: Optional[str] = None  # the preset this came from (for the record)

    # ------------------------------------------------------------------ checking
    def validate(self, device_here: bool = True) -> "TrainConfig":
        """Check every field; raise :class:`OptvizError` naming the bad one. Returns ``self``.

        ``device`` must name a device of this machine; with ``device_here=False`` only its
        name is checked (a study's driver: its shards may train on other machines)."""
        from ..devices import check_device, parse_device
        from .models import MODELS
        from .sources import DATASETS

        if self.model not in MODELS:
            raise UnknownName("model", self.model, MODELS)
        if self.dataset not in DATASETS:
            raise UnknownName("dataset", self.dataset, DATASETS)
        for name in ("epochs", "batch_size", "eval_batch_size", "check_every", "divergence_patience",
                     "evals_per_epoch"):
            _positive_int(name, getattr(self, name))
        for name in ("snapshot_every", "snapshot_val_size", "val_size", "split_seed"):
            _nonneg_int(name, getattr(self, name))
        from .snapshots import SNAPSHOT_DTYPES, SNAPSHOT_KINDS

        if self.snapshots not in SNAPSHOT_KINDS:
            raise UnknownName("snapshot policy", self.snapshots, SNAPSHOT_KINDS)
        if self.snapshot_dtype not in SNAPSHOT_DTYPES:
            raise UnknownName("snapshot dtype", self.snapshot_dtype, SNAPSHOT_DTYPES)
        if self.trainer not in TRAINERS:
            raise UnknownName("trainer", self.trainer, TRAINERS)
        from ..optim.compiled import compile_setting

        compile_setting(self.compile)
        self.divergence_rule()
        for name in ("subset", "eval_subset", "num_threads"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.schedule not in SCHEDULE_KINDS:
            raise UnknownName("schedule", self.schedule, SCHEDULE_KINDS)
        if self.dtype not in DTYPES:
            raise UnknownName("dtype", self.dtype, DTYPES)
        self.device = str((check_device if device_here else parse_device)(self.device))  # " CUDA" -> "cuda"
        for name in ("clip_norm", "weight_decay"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)
                                      or value < 0 or (name == "clip_norm" and value == 0)):
                raise InvalidValue(f"{name} must be {'> 0' if name == 'clip_norm' else '>= 0'}, got {value!r}")
        if not self.optimizers:
            raise InvalidValue("no optimizers: give at least one spec, e.g. sgd:lr=0.01")
        self.seeds = parse_seeds(self.seeds)
        self.entries()  # parses every spec
        return self

    def entries(self) -> List["Entry"]:
        """The optimizer settings of the comparison, each with a unique file-safe key."""
        parsed = []
        for spec in self.optimizers:
            parsed.append(_parse_entry(spec, self))
            if self.reference and parsed[-1]["backend"] == "optviz":
                from ..optim.torch_reference import has_reference

                if has_reference(parsed[-1]["optimizer"]):
                    parsed.append({**parsed[-1], "backend": "torch"})
        return _name_entries(parsed)

    def runs(self) -> List["RunSpec"]:
        """One run per (setting, seed), seed-major: all settings of seed 0 first."""
        entries = self.entries()
        return [RunSpec(entry=e, seed=s) for s in parse_seeds(self.seeds) for e in entries]

    def snapshot_policy(self):
        """The :class:`~optviz.mnist.snapshots.SnapshotPolicy` of this comparison."""
        from .snapshots import SnapshotPolicy

        if self.snapshot_every == 0:  # "0: never", whatever the kind
            return SnapshotPolicy("none")
        return SnapshotPolicy(self.snapshots, every=max(self.snapshot_every, 1))

    def divergence_rule(self):
        """The :class:`~optviz.mnist.divergence.DivergenceRule` of this comparison."""
        from .divergence import DivergenceRule

        return DivergenceRule(self.divergence_factor, self.divergence_patience)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        """A config from its saved form; a run folder written before a field existed keeps the
        behaviour it was trained with (dense float32 snapshots, the sequential trainer)."""
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in d.items() if k in names}
        if "snapshots" not in d:
            fields["snapshots"] = "dense" if d.get("snapshot_every", 50) else "none"
            fields.setdefault("snapshot_dtype", "float32")
        if "trainer" not in d:
            fields["trainer"] = "sequential"
        return cls(**fields)


def _positive_int(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidValue(f"{name} must be a positive integer, got {value!r}")
    return value


def _nonneg_int(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValue(f"{name} must be an integer >= 0, got {value!r}")
    return value


def parse_seeds(seeds) -> List[int]:
    """``3`` or ``"3"`` -> ``[0, 1, 2]`` (a count); ``"0,4,7"`` or ``[0, 4, 7]`` -> those
    seeds; ``"5,"`` -> ``[5]``."""
    if isinstance(seeds, str):
        text = seeds.strip()
        try:
            if "," not in text:
                return parse_seeds(int(text))
            seeds = [int(s) for s in text.split(",") if s.strip()]
        except ValueError:
            raise InvalidValue(f"seeds: a count (3) or a list (0,1,2), got {text!r}") from None
    elif isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds <= 0:
            raise InvalidValue(f"the number of seeds must be > 0, got {seeds}")
        return list(range(seeds))
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise InvalidValue(f"seeds must be integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise InvalidValue(f"seeds repeat: {seeds!r}")
    return seeds


# ====================================================================== settings and runs


@dataclass(frozen=True)
class Entry:
    """One optimizer setting of a comparison."""

    key: str  # unique and file-safe: "adam", "adam-torch", "adam-lr0.05"
    spec: str  # as given
    optimizer: str  # registry name (its colour in every figure)
    hyper: Dict[str, Any]  # hyperparameters for the optimizer (clipping taken out)
    clip_norm: Optional[float]  # clip_grad_norm_ before each step
    clip_value: Optional[float]  # clip_grad_value_ before each step
    backend: str  # "optviz": TorchOptimizer over the shared core; "torch": torch.optim
    label: str  # legend label, "Adam (η=0.001)" (+ " · torch.optim")

    @property
    def full_hyper(self) -> Dict[str, Any]:
        """Every hyperparameter of the optimizer: its defaults, with this setting's on top."""
        from ..optim import registry

        return {**registry.get(self.optimizer).defaults, **self.hyper}

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunSpec:
    entry: Entry
    seed: int

    @property
    def label(self) -> str:
        return f"{self.entry.key}-s{self.seed}"

    def to_dict(self) -> Dict[str, Any]:
        return {"run": self.label, "entry": self.entry.key, "optimizer": self.entry.optimizer,
                "backend": self.entry.backend, "seed": self.seed, "label": self.entry.label}


def _parse_entry(spec: str, config: TrainConfig) -> dict:
    from ..optim import registry

    text = spec.strip()
    backend = "optviz"
    if text.lower().startswith("torch:"):
        backend, text = "torch", text[len("torch:"):]
    name, hyper = registry.parse_spec(text)
    info = registry.get(name)
    if backend == "torch":
        from ..optim.torch_reference import has_reference

        if not has_reference(name):
            raise OptvizError(f"{name} has no torch.optim counterpart (spec {spec!r})")
    clip_norm = hyper.pop("clip_norm", None)
    clip_value = hyper.pop("clip_value", None)
    if clip_norm is None and clip_value is None and config.clip_norm is not None:
        clip_norm = float(config.clip_norm)
    if config.weight_decay is not None and "weight_decay" in info.defaults and "weight_decay" not in hyper:
        hyper["weight_decay"] = float(config.weight_decay)
    registry.create(name, **hyper)  # the values are valid
    return {"spec": spec, "optimizer": name, "hyper": hyper, "clip_norm": clip_norm, "clip_value": clip_value,
            "backend": backend}


def _name_entries(parsed: List[dict]) -> List[Entry]:
    """Keys: the optimizer's name (+ "-torch"), and where two settings share it, the
    hyperparameters in which they differ ("adam-lr0.01", "adam-lr0.001")."""
    from ..optim import registry

    def text(v):
        return f"{v:g}" if isinstance(v, float) else str(v)

    bases = [p["optimizer"] + ("-torch" if p["backend"] == "torch" else "") for p in parsed]
    fulls = [{**registry.get(p["optimizer"]).defaults, **p["hyper"], "clip": p["clip_norm"],
              "clipv": p["clip_value"]} for p in parsed]
    groups: Dict[str, List[dict]] = {}
    for base, full in zip(bases, fulls):
        groups.setdefault(base, []).append(full)
    differ = {}   # per name: the keys in which its settings differ
    for base, group in groups.items():
        names = dict.fromkeys(k for full in group for k in full)
        differ[base] = {k for k in names if len({repr(f.get(k)) for f in group}) > 1}
    keys = []
    for base, full in zip(bases, fulls):
        bits = [f"{k}{text(v)}" for k, v in full.items() if k in differ[base] and v not in (None, False)]
        keys.append(re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join([base] + bits)))
    counts = Counter(keys)
    seen: Dict[str, int] = {}
    entries = []
    for k, p in zip(keys, parsed):
        if counts[k] > 1:  # the same setting twice
            seen[k] = seen.get(k, 0) + 1
            k = f"{k}-{seen[k]}"
        clips = {c: p[c] for c in ("clip_norm", "clip_value") if p[c] is not None}
        label = registry.format_spec(p["optimizer"], {**p["hyper"], **clips})
        if p["backend"] == "torch":
            label += " · torch.optim"
        entries.append(Entry(key=k, label=label, **p))
    return entries


# ====================================================================== schedules


def make_schedule(kind: str, lr: float, epochs: int, steps_per_epoch: int) -> Optional[Callable[[int], float]]:
    """The learning rate at each step (0-based update count) for schedule ``kind``; ``None``
    for "constant". ``step`` divides the rate by 10 after each third of the run;
    ``warmup_cosine`` warms up over the first 5 % of the steps."""
    from ..optim import schedules

    total = epochs * steps_per_epoch
    if kind == "constant":
        return None
    if kind == "cosine":
        return schedules.cosine_decay(lr, total)
    if kind == "step":
        return schedules.step_decay(lr, steps_per_epoch * max(1, round(epochs / 3)), 0.1)
    if kind == "warmup_cosine":
        return schedules.warmup_cosine(lr, min(max(1, total // 20), total - 1), total)
    if kind == "one_cycle":
        return schedules.one_cycle(lr, max(total, 2))
    raise UnknownName("schedule", kind, SCHEDULE_KINDS)
