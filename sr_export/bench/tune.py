"""``sr-bench tune``: the fastest artifact for a device within a quality budget, found by measurement.

The candidates are the shipped target profiles that run on the device the
anchor profile names (its runtime installed here and timed by the device
runner), INT8 ones once per calibration recipe, and fixed-size runtimes once
per tile size. Each candidate is built exactly as its profile says and proven
(:func:`~sr_export.bench.suite.prepare_run`), then evaluated on the dataset:
its drop is the FP32 PyTorch model's Y-PSNR minus its own. Only candidates
within the budget are timed; the others stay in the table with the reason.
Timing is the device runner's (this machine or the SSH device, one run per
candidate, stored in the history); on this machine the candidates are also
timed side by side in one process, interleaved, and that is what ranks them.

The choice is the fastest candidate within the budget, which is always on the
Pareto front of drop against latency. A search cut short (Ctrl-C) keeps what it
measured and makes no choice. What a candidate's build, proof and evaluation
found is kept (``$SR_EXPORT_CACHE/tune``, keyed by everything they depend on
and checked against its files' hashes), so a second tune on the same inputs
only times again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sr_export.bench.suite import PreparedRun, Suite, SuiteModel
from sr_export.core.errors import SrExportError, first_line
from sr_export.targets.profiles import TargetProfile

DEFAULT_RECIPES = ("default", "mixed")
Say = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    """One thing the device could ship: a profile, and the recipe or tile size that varies it."""

    profile: TargetProfile
    recipe: str | None = None
    tile: tuple[int, int] | None = None  # fixed-size runtimes: the LR size of the file (larger images run in tiles)

    @property
    def name(self) -> str:
        extras = [f"recipe {self.recipe}"] if self.recipe else []
        extras += [f"tile {self.tile[0]}x{self.tile[1]}"] if self.tile else []
        return self.profile.name + (f" ({', '.join(extras)})" if extras else "")

    def effective_profile(self) -> TargetProfile:
        """The profile this candidate builds with: the recipe in its options, its own name for the history."""
        options = {**self.profile.options, **({"calibration": self.recipe} if self.recipe else {})}
        suffix = (f"+{self.recipe}" if self.recipe else "") + (f"@{self.tile[0]}x{self.tile[1]}" if self.tile else "")
        return replace(self.profile, name=self.profile.name + suffix, options=options)


@dataclass
class Outcome:
    """What happened to one candidate."""

    candidate: str
    target: str
    backend: str
    precision: str
    status: str  # measured | over budget | failed | not reached (the search was stopped first)
    reason: str = ""
    artifact: str | None = None
    psnr_y: float | None = None
    drop_db: float | None = None
    median_ms: float | None = None  # at the first size: side by side on this machine, else the device's run
    device_ms: dict[str, float] = field(default_factory=dict)  # the device runner's median per size
    on_front: bool = False
    reused: bool = False  # built, proven and evaluated by an earlier tune (its files unchanged); timed anew

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TuneResult:
    model: str
    scale: int
    device: str
    dataset: str
    max_drop: float
    sizes: tuple[tuple[int, int], ...]
    reference_psnr_y: float | None
    outcomes: list[Outcome]
    complete: bool
    batch: str
    choice: Outcome | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "scale": self.scale, "device": self.device, "dataset": self.dataset,
                "max_drop_db": self.max_drop, "sizes": [f"{h}x{w}" for h, w in self.sizes],
                "reference_psnr_y": self.reference_psnr_y, "complete": self.complete, "batch": self.batch,
                "choice": self.choice.candidate if self.choice else None,
                "candidates": [o.to_dict() for o in self.outcomes]}


# --- candidates -------------------------------------------------------------------------------------------


def same_device(a: TargetProfile, b: TargetProfile) -> bool:
    if a.access.is_remote != b.access.is_remote:
        return False
    return not a.access.is_remote or (a.access.host, a.access.port, a.access.user) == \
        (b.access.host, b.access.port, b.access.user)


def candidates_for(anchor: TargetProfile, *, profiles: Sequence[TargetProfile] | None = None,
                   recipes: Sequence[str] | None = None, tiles: Sequence[tuple[int, int]] = ()) -> list[Candidate]:
    """What to try on ``anchor``'s device: ``profiles`` (default: every shipped profile that runs where
    ``anchor`` runs) that this installation can build and time, each INT8 one once per recipe (where its
    runtime takes one; ``recipes``, default the profile's own then ``DEFAULT_RECIPES``) and each fixed-size one
    once per tile size; duplicates once."""
    from sr_export.targets.profiles import available_profiles, load_target

    if profiles is None:
        shipped = [load_target(path) for name, path in sorted(available_profiles().items()) if name != anchor.name]
        profiles = [anchor] + [p for p in shipped if same_device(p, anchor)]
    seen: set[tuple[Any, ...]] = set()
    found: list[Candidate] = []
    for profile in profiles:
        for candidate in _variants(profile, anchor, recipes, tiles):
            effective = candidate.effective_profile()
            key = (effective.backend, effective.precision, repr(sorted(effective.options.items())), candidate.tile)
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def _variants(profile: TargetProfile, anchor: TargetProfile, recipes: Sequence[str] | None,
              tiles: Sequence[tuple[int, int]]) -> list[Candidate]:
    from sr_export.runtimes.registry import get_runtime, runtime_names

    if profile.backend not in runtime_names():
        return []
    runtime = get_runtime(profile.backend)
    if runtime.device_session is None or runtime.missing_packages():
        return []  # the device runner cannot time it, or this installation cannot build it
    profile = replace(profile, access=anchor.access, threads=anchor.threads)
    takes_recipe = "calibration" in getattr(runtime.options, "__dataclass_fields__", {})
    chosen_recipes: Sequence[str | None] = [None]
    if profile.precision == "int8" and takes_recipe:
        # The profile's own recipe (OpenVINO's accuracy control, say) first, then the ones asked for.
        own = profile.options.get("calibration")
        wanted = recipes if recipes is not None else [*([str(own)] if own else []), *DEFAULT_RECIPES]
        chosen_recipes = list(dict.fromkeys(wanted)) or [None]
    # Tile variants are ranked by the side-by-side timing, which only this machine has.
    sizes: Sequence[tuple[int, int] | None] = tiles if runtime.fixed_size and tiles and not anchor.access.is_remote \
        else [None]
    return [Candidate(profile, recipe, tile) for recipe in chosen_recipes for tile in sizes]


# --- choosing ---------------------------------------------------------------------------------------------


def pareto_front(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The measured candidates no other one beats on both drop and latency (lower is better for both)."""
    from sr_export.bench.pareto import non_dominated

    measured = [o for o in outcomes if o.status == "measured" and o.median_ms is not None and o.drop_db is not None]
    return [measured[i] for i in non_dominated([(o.median_ms, o.drop_db) for o in measured])]  # type: ignore[misc]


def choose(outcomes: Sequence[Outcome], max_drop: float) -> Outcome | None:
    """The fastest measured candidate within ``max_drop``; None if none is."""
    within = [o for o in outcomes if o.status == "measured" and o.drop_db is not None and o.drop_db <= max_drop]
    return min(within, key=lambda o: o.median_ms if o.median_ms is not None else math.inf, default=None)


# --- the search -------------------------------------------------------------------------------------------


def tune(
    model: str,
    anchor: TargetProfile,
    output: Path,
    *,
    weights: str | None = None,
    scale: int | None = None,
    max_drop: float = 0.10,
    dataset: str = "builtin",
    sizes: Sequence[tuple[int, int]] | None = None,
    warmup: int | None = None,
    runs: int | None = None,
    candidates: Sequence[Candidate] | None = None,
    history: Path | None = None,
    store: bool = True,
    say: Say | None = None,
    on_start: Callable[[int], None] | None = None,
    advance: Callable[[], None] | None = None,
) -> TuneResult:
    """Build, prove, evaluate and time every candidate for ``anchor``'s device; choose the fastest within
    ``max_drop`` dB of Y-PSNR (against the FP32 PyTorch model on ``dataset``) and copy it to ``output``.
    Every timed candidate is stored in the history (``history``: its path, default the user's) unless
    ``store`` is false. ``on_start(total)`` and ``advance()`` (once per candidate proven) report progress."""
    import uuid

    from sr_export.bench.suite import load_and_export

    say = say or (lambda _text: None)
    advance = advance or (lambda: None)
    if max_drop < 0:
        raise SrExportError(f"--max-drop is the Y-PSNR the choice may lose, in dB (>= 0), not {max_drop}")
    entry = SuiteModel(model, scale, weights)
    sizes = tuple(sizes) if sizes else anchor.input_sizes
    suite = Suite(name="tune", models=(entry,), dataset=dataset, speed_sizes=sizes, warmup=warmup, runs=runs)
    chosen = list(candidates) if candidates is not None else candidates_for(anchor)
    if not chosen:
        raise SrExportError(f"no candidate for the device of target '{anchor.name}' can be built and timed with "
                            "the runtimes installed here; sr-export runtimes lists them and the extras to install")
    if on_start is not None:
        on_start(len(chosen))
    work = Path(output) / "candidates"
    made = [folder for folder in (Path(output), work) if not folder.exists()]
    work.mkdir(parents=True, exist_ok=True)
    batch = uuid.uuid4().hex[:12]
    cache: dict[Any, Any] = {}
    # The model is the user's, not a candidate's: a bad name or checkpoint stops here, in one line.
    try:
        load_and_export(entry, suite, work, say, cache=cache)
    except BaseException:
        for folder in reversed(made):  # leave no empty folders behind
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    outcomes = [Outcome(c.name, c.effective_profile().name, c.profile.backend, c.profile.precision, "not reached")
                for c in chosen]
    prepared: dict[int, PreparedRun] = {}
    reference = None
    complete = False
    try:
        for index, candidate in enumerate(chosen):
            outcome = outcomes[index]
            say(f"{candidate.name}: building and proving")
            run = _prepare(candidate, suite, work, say, cache, outcome)
            if run is not None:
                if reference is None:
                    reference = _reference_psnr(run, dataset, say)
                _judge(run, outcome, reference, max_drop)
                if outcome.status == "measured":
                    prepared[index] = run
            advance()
        _time(prepared, outcomes, suite, anchor, say, history, store, batch)
        complete = True
    except KeyboardInterrupt:
        say("stopped: what was measured is kept; no choice is made from a partial search")
    for outcome in outcomes:
        if outcome.status == "measured" and outcome.median_ms is None:
            outcome.status, outcome.reason = "not reached", "the search stopped before it was timed"
    front = pareto_front(outcomes)
    for outcome in front:
        outcome.on_front = True
    first = next(iter(prepared.values()), None)
    info = first.model.info if first is not None else None
    result = TuneResult(model=info.name if info else model, scale=info.scale if info else (scale or 0),
                        device=anchor.access.host if anchor.access.is_remote else "this machine", dataset=dataset,
                        max_drop=max_drop, sizes=sizes, reference_psnr_y=reference, outcomes=outcomes,
                        complete=complete, batch=batch)
    if complete:
        result.choice = choose(outcomes, max_drop)
    return result


def _prepare(candidate: Candidate, suite: Suite, work: Path, say: Say, cache: dict[Any, Any],
             outcome: Outcome) -> PreparedRun | None:
    from sr_export.bench.suite import prepare_run
    from sr_export.core.errors import CheckFailed

    profile = candidate.effective_profile()
    plan = replace(suite, speed_sizes=(candidate.tile,) + tuple(s for s in suite.speed_sizes or () if s != candidate.tile)) \
        if candidate.tile else suite
    key = candidate_key(candidate, plan, cache[suite.models[0]][0])
    run = reused_run(key, suite.models[0], plan, profile, cache)
    if run is not None:
        outcome.reused = True
        say(f"{candidate.name}: proven and evaluated by an earlier tune (files unchanged)")
    try:
        if run is None:
            run = prepare_run(suite.models[0], plan, profile, work, lambda text: say(f"{candidate.name}: {text}"),
                              cache=cache)
            remember_run(key, run)
    except CheckFailed as exc:
        outcome.status, outcome.reason = "failed", f"check: {first_line(exc)}"
        return None
    except SrExportError as exc:
        outcome.status, outcome.reason = "failed", first_line(exc)
        return None
    outcome.artifact = str(run.artifact.path)
    if run.quality is None:
        outcome.status, outcome.reason = "failed", "not proven here (its runtime is not on this machine)"
        return None
    return run


def _reference_psnr(run: PreparedRun, dataset: str, say: Say) -> float:
    """The FP32 PyTorch model's Y-PSNR on the dataset: what every drop is measured from."""
    from sr_export.bench.evaluate import evaluate
    from sr_export.data.datasets import load_dataset
    from sr_export.runtimes.pytorch import PyTorchRunner

    info = run.model.info
    say(f"PyTorch FP32 on {dataset} (the reference)")
    with PyTorchRunner(run.model, run.timing.threads) as runner:
        return float(evaluate(runner, info, load_dataset(dataset, info.scale), dataset=dataset).mean.psnr_y)


def _judge(run: PreparedRun, outcome: Outcome, reference: float, max_drop: float) -> None:
    outcome.psnr_y = float(run.quality.mean.psnr_y)
    outcome.drop_db = round(reference - outcome.psnr_y, 4)
    if outcome.drop_db > max_drop:
        outcome.status, outcome.reason = "over budget", f"loses {outcome.drop_db:.3f} dB > {max_drop:g} dB: not timed"
    else:
        outcome.status = "measured"


def _time(prepared: Mapping[int, PreparedRun], outcomes: list[Outcome], suite: Suite, anchor: TargetProfile,
          say: Say, history: Path | None, store: bool, batch: str) -> None:
    """The device runner's run for every candidate within budget (stored), then, on this machine, all of them
    side by side in one process: the latencies that rank them."""
    from sr_export.bench.history import open_history
    from sr_export.bench.suite import time_on_device

    timed: dict[int, PreparedRun] = {}
    for index, run in prepared.items():
        try:
            row = time_on_device(run, suite, lambda text, name=outcomes[index].candidate: say(f"{name}: {text}"),
                                 batch=batch, eager=False)  # the candidates are compared with each other
        except SrExportError as exc:  # this candidate's run failed; the others are still worth timing
            outcomes[index].status, outcomes[index].reason = "failed", f"timing: {first_line(exc)}"
            continue
        timed[index] = run
        outcomes[index].device_ms = {f"{s['input_hw'][0]}x{s['input_hw'][1]}": float(s["inference"]["median_ms"])
                                     for s in row.record.sizes} if row.record else {}
        if store and row.record is not None:
            with open_history(history) as stored:
                stored.add(row.record)
        outcomes[index].median_ms = next(iter(outcomes[index].device_ms.values()), None)
    if anchor.access.is_remote or len(timed) < 2:
        return
    say(f"timing {len(timed)} candidates side by side")
    for index, median in side_by_side(timed, suite, anchor).items():
        outcomes[index].median_ms = median


def side_by_side(prepared: Mapping[int, PreparedRun], suite: Suite, anchor: TargetProfile) -> dict[int, float]:
    """Each candidate's median latency (ms) at the first size, runs interleaved in this process."""
    from sr_export.bench.speed import measure
    from sr_export.runtimes.open import open_runner

    first = next(iter(prepared.values()))
    size = (suite.speed_sizes or anchor.input_sizes)[0]
    timing = suite.timing(anchor)
    runners = {}
    try:
        for index, run in prepared.items():
            # A fixed-size file was built at the first size, or at its tile size (then it runs in tiles).
            runners[index] = open_runner(run.artifact, threads=timing.threads).activate()
        report = measure({str(i): r for i, r in runners.items()}, first.model.info, [size],
                         warmup=max(1, timing.warmup), runs=timing.runs, threads=timing.threads)
    finally:
        for runner in runners.values():
            runner.deactivate()
    return {int(t.runner): t.median_s * 1e3 for t in report.timings}


# --- what an earlier tune proved -------------------------------------------------------------------------


def candidate_key(candidate: Candidate, suite: Suite, model: Any) -> str:
    """What a candidate's build, proof and evaluation depend on: sr-export's version, the model and its weights,
    the runtime, precision and options, the sizes its files are built at, and the dataset's files."""
    import hashlib
    import json

    from sr_export import __version__

    profile = candidate.effective_profile()
    described = {
        "tool": __version__, "model": model.info.name, "scale": model.info.scale,
        "weights": model.weights_sha256, "request": model.request.to_dict(),
        "backend": profile.backend, "precision": profile.precision,
        "options": repr(sorted(profile.options.items())),
        # Fixed-size runtimes build one file per timed size; other files do not depend on the sizes.
        "sizes": [list(s) for s in suite.timing(profile).sizes] if profile.require_backend().fixed_size else None,
        "dataset": _dataset_identity(suite.dataset),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _dataset_identity(dataset: str) -> Any:
    folder = Path(dataset)
    if not folder.is_dir():
        return dataset
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in folder.rglob("*") if p.is_file())


def remember_run(key: str, run: PreparedRun) -> None:
    """Keep what proving and evaluating ``run`` found, with its files' hashes (the model stays out)."""
    import pickle

    from sr_export.bench.suite import artifact_files
    from sr_export.core.cache import tune_cache_dir
    from sr_export.core.io import atomic_path

    files = {str(path): _file_hash(path) for b in run.built if b.artifact is not None
             for path in artifact_files(b.artifact)}
    record = {"built": run.built, "proof": run.proof, "quality": run.quality, "sample": run.sample, "files": files}
    folder = tune_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / f"{key}.pickle", force=True) as tmp:
        tmp.write_bytes(pickle.dumps(record))


def reused_run(key: str, entry: SuiteModel, suite: Suite, profile: TargetProfile,
               cache: dict[Any, Any]) -> PreparedRun | None:
    """The run an earlier tune proved and evaluated, if every file it built is still there, unchanged."""
    import pickle

    from sr_export.core.cache import tune_cache_dir

    path = tune_cache_dir() / f"{key}.pickle"
    try:
        record = pickle.loads(path.read_bytes())  # sr-export's own cache, written by remember_run
        files = record["files"]
        if not files or any(_file_hash(Path(name)) != digest for name, digest in files.items()):
            return None
    except (OSError, EOFError, KeyError, TypeError, ValueError, AttributeError, pickle.UnpicklingError,
            ModuleNotFoundError):
        return None  # none yet, or a stale or damaged entry: prove it again
    model, _onnx, complexity = cache[entry]
    artifact = record["built"][0].artifact
    return PreparedRun(entry, profile, suite.timing(profile), model, complexity, record["built"], artifact,
                       _file_hash(artifact.path), record["proof"], record["quality"], record["sample"])


def _file_hash(path: Path) -> str | None:
    """A file's sha256, a folder's over its files (an .mlpackage); None when it is gone."""
    import hashlib

    path = Path(path)
    if not path.exists():
        return None
    digest = hashlib.sha256()
    for item in sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()):
        digest.update(item.read_bytes())
    return digest.hexdigest()


# --- the chosen file --------------------------------------------------------------------------------------


def copy_choice(result: TuneResult, destination: Path) -> Path:
    """The chosen artifact (with its companion files) copied into ``destination``, its metadata noting this tune
    run, and ``tune.json`` beside it; nothing is copied from a search that made no choice."""
    import shutil

    from sr_export.bench.suite import artifact_files
    from sr_export.core.artifacts import Artifact, embed_in_onnx, read_metadata, write_sidecar
    from sr_export.core.io import atomic_path

    if result.choice is None or result.choice.artifact is None:
        raise SrExportError("no candidate is within the budget; nothing to copy (raise --max-drop or add runtimes)")
    source = Path(result.choice.artifact)
    metadata = read_metadata(source)
    if metadata is None:
        raise SrExportError(f"{source} lost its sr-export metadata during the search; run the tune again")
    destination.mkdir(parents=True, exist_ok=True)
    note = (f"chosen by sr-bench tune {result.batch}: the fastest of {len(result.outcomes)} candidates within "
            f"{result.max_drop:g} dB Y-PSNR on {result.dataset} ({result.choice.candidate}, drop "
            f"{result.choice.drop_db:.3f} dB)")
    noted = replace(metadata, notes=(*metadata.notes, note))
    for path in artifact_files(Artifact(source, metadata)):
        with atomic_path(destination / path.name, force=True) as tmp:
            if path == source and source.suffix.lower() == ".onnx":
                import onnx

                proto = onnx.load(str(source))
                embed_in_onnx(proto, noted)  # an ONNX file's metadata lives inside it
                onnx.save(proto, str(tmp))
            else:
                shutil.copyfile(path, tmp)
    target = destination / source.name
    if source.suffix.lower() != ".onnx":
        write_sidecar(target, noted)
    return target
