"""Running a study's shards as Ray tasks: on a local Ray, or on a cluster that exists.

``optviz tune ... --executor ray`` hands each shard (:func:`~optviz.study.run.run_shard`,
the unit of work) to a Ray task. The executor decides only *where* a shard runs;
what it computes is :func:`run_shard`'s, so a Ray study equals a local one.

Why Ray *tasks*, not Ray Tune trials: a study is a fixed grid, not a search. Its unit
of work is a stack of many runs trained as one model, whereas a Tune trial is one
configuration reporting one metric stream; the study needs every setting to finish
(honest selection on validation), so Tune's schedulers and early stopping have
nothing to do; and a shard already checkpoints every run every epoch into its own
folder and resumes bit for bit, so Tune's checkpoint syncing would only copy what is
there. What the study needs from an engine is placement, retries after a lost worker
and a progress channel: a task with ``max_retries`` and a small actor give exactly
that, with ``ray`` alone (no ``ray[tune]``, pandas or pyarrow).

The rules:

* **Where**: without ``address`` a private local Ray is started (in a temporary
  folder, no dashboard, quiet logs) and stopped afterwards; ``address="auto"`` or
  ``HOST:PORT`` joins a running cluster. A Ray session that is already up in this
  process (a notebook, the tests) is used as it is. At most ``workers`` shards run
  at a time (default: one per CPU of the cluster); the CPUs are shared out among
  them as torch threads.
* **Files**: every shard writes only its own folder ``DIR/shards/NAME``; on a
  cluster the study folder must be on a file system that every node mounts at the
  same path (NFS, Lustre, ...), which each node checks before any shard starts.
* **Data**: each node first verifies its dataset files by checksum (or fetches
  them), once per study, under a file lock; a node that has neither the files nor a
  network fails the study with the usual instructions (``optviz data fetch --from``).
  Each worker process then loads the data once and keeps it for the shards it runs.
* **Faults**: a shard whose worker process dies (killed, out of memory, a lost
  node) is retried, up to ``max_retries`` times, from its last checkpoint:
  :func:`run_shard` resumes it and drops what the lost attempt recorded after that
  checkpoint, so nothing is lost or counted twice. A shard that fails for a real
  reason (an :class:`~optviz.errors.OptvizError`: a bad setting, an unreadable
  checkpoint) is not retried: the study stops with that shard's one-line error.
  Anything else is a bug and keeps Ray's traceback.
* **Progress**: workers send their step counts to a small actor; the driver polls
  it and advances the study's one bar (a shard retried from a checkpoint does not
  count its lost steps twice: the bar waits until the retry catches up).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import OptvizError, RuntimeFailure

__all__ = ["RayExecutor", "INSTALL_HINT", "import_ray", "prepare_node"]

INSTALL_HINT = 'the Ray executor needs Ray, which is not installed: pip install -e ".[ray]" (or pip install ray)'

#: How often the driver collects progress from the workers (seconds).
POLL_SECONDS = 0.25
#: How often a worker sends its step count (seconds); fewer messages, same total.
PUSH_SECONDS = 0.5


def import_ray():
    """The ``ray`` module, or the one line that says how to install it."""
    try:
        import ray
    except ImportError:
        raise OptvizError(INSTALL_HINT) from None
    return ray


class ShardFailed(OptvizError):
    """A shard (or a node's preparation) that failed for a real reason, with the exit code
    of its cause (2 for bad input, 1 for a runtime failure)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self):
        return (ShardFailed, (str(self), self.exit_code))


def _one_line(exc) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


# ====================================================================== the driver


class RayExecutor:
    """Runs a study's shards as Ray tasks (see the module docstring).

    ``address``: None (start a local Ray), ``"auto"`` or ``"HOST:PORT"`` (join a cluster).
    ``workers``: shards at a time (default: one per CPU). ``threads``: torch threads (and
    Ray CPUs) per shard (default: the cluster's CPUs shared out among the shards that run
    at once, at most one node's). ``max_retries``: how often a shard whose worker died is
    tried again. After :meth:`run`, ``attempts`` lists every start of a shard (``shard``,
    ``pid``, ``node``): a retried shard appears twice; ``finished`` says, per shard, where
    its last try ran and how long it took (loading the data, training).
    """

    name = "ray"

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None, max_retries: int = 3,
                 threads: Optional[int] = None, init_options: Optional[dict] = None):
        self.ray = import_ray()   # before any work: one line if Ray is missing
        for name, value, low in (("--workers", workers, 1), ("threads", threads, 1), ("max_retries", max_retries, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise OptvizError(f"{name} must be a whole number >= {low}, got {value!r}")
        self.address = address
        self.workers = workers
        self.threads = threads
        self.max_retries = 3 if max_retries is None else max_retries
        self.init_options = dict(init_options or {})
        self.attempts: List[dict] = []
        self.finished: Dict[str, dict] = {}   # shard -> where and how long its last try ran

    # ---------------------------------------------------------------- the session
    @contextlib.contextmanager
    def session(self):
        """A Ray session for one study: the caller's if one is up, else a new one, stopped after."""
        ray = self.ray
        if ray.is_initialized():
            yield
            return
        quiet = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True)
        temp = None
        if self.address is None:
            # a private Ray: "local" never joins a cluster someone started on this machine;
            # a short temp path, because Ray's sockets live under it (108-byte limit)
            temp = tempfile.mkdtemp(prefix="optviz-ray-")
            options = {"num_cpus": os.cpu_count() or 1, "_temp_dir": temp, **quiet, **self.init_options}
            try:
                ray.init(address="local", **options)
            except Exception as exc:  # noqa: BLE001  (Ray raises several kinds when it cannot start)
                shutil.rmtree(temp, ignore_errors=True)
                raise RuntimeFailure(f"could not start a local Ray: {_one_line(exc)}") from None
        else:
            try:
                ray.init(address=self.address, **quiet, **self.init_options)
            except Exception as exc:  # noqa: BLE001
                raise RuntimeFailure(f"cannot join the Ray cluster at {self.address!r}: {_one_line(exc)} (is "
                                     f"`ray start --head` running there? a cluster with token authentication also "
                                     f"needs RAY_AUTH_MODE=token and its token here)") from None
        try:
            yield
        finally:
            ray.shutdown()
            if temp is not None:
                shutil.rmtree(temp, ignore_errors=True)

    # ---------------------------------------------------------------- the study
    def run(self, study, shards, bar, log=None, data=None) -> None:
        """Train ``shards`` of ``study`` on Ray, advancing ``bar`` (a :class:`StudyBar`)."""
        if not shards:
            return
        with self.session():
            self._run(study, list(shards), bar, log, data)

    def _run(self, study, shards, bar, log, data) -> None:
        from .run import plural, remaining_steps

        ray = self.ray
        note = log or (bar.write if not getattr(bar, "disable", True) else (lambda msg: None))
        study_path = str(Path(study.path).resolve())
        spec = study.spec()
        config = spec.base_config()
        nodes = _cpu_nodes(ray)
        if not nodes:
            raise RuntimeFailure("the Ray cluster has no node with a CPU to run shards on")
        total_cpus = sum(int(n["Resources"]["CPU"]) for n in nodes)
        biggest = max(int(n["Resources"]["CPU"]) for n in nodes)
        at_once = min(self.workers or total_cpus, len(shards))
        threads = self.threads or max(1, min(biggest, total_cpus // at_once))
        if threads > biggest:
            raise OptvizError(f"{threads} threads per shard: no node of the cluster has that many CPUs "
                              f"(the largest has {biggest})")

        self._prepare_nodes(nodes, study_path, None if data is not None else config)
        note(f"ray: {plural(len(nodes), 'node')}, {plural(total_cpus, 'CPU')}; {plural(at_once, 'shard')} at a time, "
             f"{plural(threads, 'thread')} each")

        tracker = ray.remote(num_cpus=0)(_Tracker).remote()
        data_ref = ray.put(data) if data is not None else None
        task = ray.remote(_train_shard).options(num_cpus=threads, max_retries=self.max_retries,
                                                retry_exceptions=False)
        tally = _Tally({s.name: remaining_steps(study, [s]) for s in shards})
        runs_total = sum(s.num_runs for s in study.shards())
        runs_done = runs_total - sum(s.num_runs for s in shards)
        pending, running = list(shards), {}
        try:
            while pending or running:
                while pending and len(running) < at_once:
                    shard = pending.pop(0)
                    ref = task.remote(study_path, shard.name, data_ref, threads, tracker, log is not None)
                    running[ref] = shard
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                self._collect(ray, tracker, tally, note, log)
                for ref in ready:
                    shard = running.pop(ref)
                    try:
                        info = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001  (sorted out in _failure)
                        raise self._failure(ray, exc, shard) from None
                    self.finished[shard.name] = info
                    tally.finish(shard.name)
                    runs_done += shard.num_runs
                    bar.shard_done()
                tally.advance(bar)
                bar.set_postfix_str(f"{runs_done}/{runs_total} runs done, {plural(len(running), 'shard')} running")
        except BaseException:
            self._stop(ray, list(running))
            raise
        finally:
            with contextlib.suppress(Exception):
                ray.kill(tracker)

    def _prepare_nodes(self, nodes, study_path: str, config) -> None:
        """On every node, before any shard: the same versions, the study folder, the data."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        want = _versions()
        data = (config.dataset, config.data_dir) if config is not None else (None, None)
        prep = ray.remote(prepare_node)
        refs = {prep.options(num_cpus=0, max_retries=1, scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(study_path, *data, want): n for n in nodes}
        for ref, node in refs.items():
            try:
                ray.get(ref)
            except Exception as exc:  # noqa: BLE001
                cause = getattr(exc, "cause", None)
                where = f"node {node.get('NodeManagerAddress', node['NodeID'][:8])}"
                if isinstance(cause, OptvizError):
                    raise ShardFailed(f"{where}: {cause}", cause.exit_code) from None
                raise RuntimeFailure(f"{where} could not be prepared: {_one_line(exc)}") from None

    def _collect(self, ray, tracker, tally: "_Tally", note, log) -> None:
        for msg in ray.get(tracker.drain.remote()):
            kind, shard = msg[0], msg[1]
            if kind == "begin":
                _, _, token, pid, node, left = msg
                tries = sum(1 for a in self.attempts if a["shard"] == shard)
                self.attempts.append({"shard": shard, "pid": pid, "node": node, "token": token})
                if tries:
                    note(f"shard {shard}: its worker was lost; try {tries + 1} resumes it from its last "
                         f"checkpoint on {node}")
                tally.begin(shard, token, left)
            elif kind == "steps":
                tally.steps(shard, msg[2], msg[3])
            elif kind == "log" and log is not None:
                log(f"[{shard}] {msg[2]}")

    def _failure(self, ray, exc, shard) -> BaseException:
        """The exception that ends the study when ``shard`` failed with ``exc``."""
        errors = ray.exceptions
        if isinstance(exc, errors.RayTaskError):
            cause = getattr(exc, "cause", None)
            if isinstance(cause, OptvizError):
                text = str(cause)
                text = text if text.startswith(f"shard {shard.name}") else f"shard {shard.name}: {text}"
                return ShardFailed(text, cause.exit_code)
            if isinstance(cause, KeyboardInterrupt):   # stopped by Ctrl-C on its node: its state is saved
                return KeyboardInterrupt()
            return exc                                 # a bug: keep Ray's traceback
        if isinstance(exc, errors.TaskCancelledError):
            return KeyboardInterrupt()
        if isinstance(exc, (errors.WorkerCrashedError, errors.NodeDiedError, errors.OutOfMemoryError,
                            errors.ObjectLostError, errors.LocalRayletDiedError)):
            return RuntimeFailure(f"shard {shard.name}: its worker died {self.max_retries + 1} times "
                                  f"({_one_line(exc)}); every finished epoch is kept: run the same command to resume")
        return RuntimeFailure(f"shard {shard.name}: {type(exc).__name__}: {_one_line(exc)}")

    def _stop(self, ray, refs, wait_s: float = 30.0) -> None:
        """Ask running shards to stop as after Ctrl-C (each saves its state), then force the rest."""
        if not refs:
            return
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False)
        with contextlib.suppress(Exception):
            _, left = ray.wait(refs, num_returns=len(refs), timeout=wait_s)
            for ref in left:
                ray.cancel(ref, force=True)


def _cpu_nodes(ray) -> List[dict]:
    return [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]


class _Tally:
    """Run-steps done per shard, from the workers' reports; the bar only moves forward.

    A shard's count is what its checkpoints held when its current try began plus what
    that try has reported since; reports of an earlier (lost) try are ignored, so a
    retried shard is never counted twice.
    """

    def __init__(self, owed: Dict[str, int]):
        self.owed = dict(owed)               # shard -> steps it had left when the study (re)started
        self.done = {k: 0 for k in owed}
        self.token: Dict[str, str] = {}
        self.base: Dict[str, int] = {}
        self.shown = 0

    def begin(self, shard: str, token: str, left: int) -> None:
        if shard not in self.owed:
            return
        self.token[shard] = token
        self.base[shard] = max(0, self.owed[shard] - left)
        self.done[shard] = min(self.owed[shard], self.base[shard])

    def steps(self, shard: str, token: str, n: int) -> None:
        if self.token.get(shard) == token:
            self.done[shard] = min(self.owed[shard], self.done[shard] + n)

    def finish(self, shard: str) -> None:
        self.done[shard] = self.owed.get(shard, 0)

    def advance(self, bar) -> None:
        total = sum(self.done.values())
        if total > self.shown:
            bar.update(total - self.shown)
            self.shown = total


class _Tracker:
    """The progress channel (a Ray actor): workers push messages, the driver drains them."""

    def __init__(self):
        self.messages: list = []

    def push(self, messages: list) -> None:
        self.messages.extend(messages)

    def drain(self) -> list:
        out, self.messages = self.messages, []
        return out


# ====================================================================== on the workers


def _versions() -> dict:
    import torch

    from .. import __version__

    return {"optviz": __version__, "torch": torch.__version__}


@contextlib.contextmanager
def _data_lock(root: Path):
    """One process per node checks or fetches the files at a time (two `ray start` on one
    machine, or nodes sharing a data folder); no lock where the folder cannot be written."""
    try:
        import fcntl

        root.mkdir(parents=True, exist_ok=True)
        fh = open(root / ".optviz-data.lock", "a")
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        fh.close()


def prepare_node(study_path: str, dataset: Optional[str], data_dir, want: dict) -> dict:
    """Runs once on every node before its shards: same optviz and torch as the driver, the
    study folder in sight, and the dataset's files verified by checksum (fetched if missing).
    Raises :class:`OptvizError` with what to do."""
    from ..mnist import sources

    have = _versions()
    if have != want:
        raise RuntimeFailure(f"this node runs optviz {have['optviz']} with torch {have['torch']}, the driver "
                             f"optviz {want['optviz']} with torch {want['torch']}: install the same on every node")
    if not (Path(study_path) / "study.json").is_file():
        raise RuntimeFailure(f"cannot see the study folder {study_path}: put it on a file system that every node "
                             f"mounts at the same path (NFS, Lustre, ...)")
    out = {"pid": os.getpid(), **have}
    if dataset is None:   # the data came with the study (tests, notebooks)
        return out
    root = sources.resolve_data_dir(data_dir)
    with _data_lock(root):
        status = sources.dataset_status(dataset, root, trust_stamps=False)   # a full checksum, once
        if not status.ok:
            status = sources.ensure_dataset(dataset, root, download=True)
    return {**out, "data": str(status.raw_dir)}


_DATA: Dict[tuple, object] = {}   # this worker process's dataset, loaded once for all its shards


def _node_data(config):
    from ..mnist import sources
    from ..mnist.dataset import MNISTData

    key = (config.dataset, str(sources.resolve_data_dir(config.data_dir)), config.val_size, config.split_seed)
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = MNISTData.load(config.dataset, config.data_dir, val_size=config.val_size,
                                    split_seed=config.split_seed, download=False)
    return _DATA[key]


class _WorkerBar:
    """The bar a shard's trainer advances on a worker: counts go to the tracker in batches."""

    disable = True   # the trainer logs through ``log``, not through the bar

    def __init__(self, tracker, shard: str, token: str, forward_log: bool):
        self.tracker, self.shard, self.token = tracker, shard, token
        self.forward_log = forward_log
        self._steps, self._lines, self._last = 0, [], time.monotonic()

    def update(self, n) -> None:
        self._steps += int(n)
        if time.monotonic() - self._last >= PUSH_SECONDS:
            self.flush()

    def log(self, text: str) -> None:
        if self.forward_log:
            self._lines.append(text)
            self.flush()

    write = log

    def set_postfix_str(self, text) -> None:
        pass   # the driver's bar says what runs

    def flush(self) -> None:
        messages = [("log", self.shard, line) for line in self._lines]
        if self._steps:
            messages.append(("steps", self.shard, self.token, self._steps))
        if messages:
            self.tracker.push.remote(messages)
        self._steps, self._lines, self._last = 0, [], time.monotonic()

    def close(self) -> None:
        self.flush()


def _train_shard(study_path: str, shard_name: str, data, threads: int, tracker, forward_log: bool) -> dict:
    """One Ray task: :func:`run_shard` on this worker, reporting to ``tracker``."""
    import ray
    import torch

    from .run import StudyDir, remaining_steps, run_shard

    study = StudyDir.open(study_path)
    shard = next((s for s in study.shards() if s.name == shard_name), None)
    left = remaining_steps(study, [shard]) if shard is not None else 0
    node = ray.util.get_node_ip_address()
    token = uuid.uuid4().hex
    # waited for: the driver knows of this try before anything it does can reach the driver
    ray.get(tracker.push.remote([("begin", shard_name, token, os.getpid(), node, left)]))
    torch.set_num_threads(threads)
    bar = _WorkerBar(tracker, shard_name, token, forward_log)
    started = time.perf_counter()
    try:
        if data is None:
            data = _node_data(study.spec().base_config())
        loaded = time.perf_counter()
        run_shard(study_path, shard_name, data=data, progress=bar, log=bar.log if forward_log else None)
    finally:
        bar.flush()
    return {"shard": shard_name, "node": node, "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(), "threads": torch.get_num_threads(),
            "seconds": {"data": loaded - started, "train": time.perf_counter() - loaded}}
