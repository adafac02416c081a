r"""``selfrecon bench``: train every row of a benchmark experiment, score it, write the tables.

An experiment is a normal selfrecon config (``benchmarks/configs/NAME.yaml``: the recommended row)
with a ``bench`` section listing the rows (learned: config overrides, run with ``selfrecon train``
in a child process; classical: a solver or baseline, parameters chosen on the validation split),
the settings (e.g. noise levels), the training seeds and the targets. For each setting and row the
bench evaluates ``best.pt`` on the held-out test images (ground truth used for scoring only) and
writes

* ``OUT/NAME.csv`` (one line per setting × row), ``OUT/NAME_per_image.csv`` (every score),
* ``OUT/NAME.png`` (PSNR bars with 95 % intervals) and ``OUT/NAME_samples.png`` (y, A†y, each row
  and x on the first test image, per setting),
* ``OUT/NAME.md``, and ``RESULTS.md`` assembled from every ``OUT/*.md``.

Protocol. Every learned row of a setting uses the same network, data, step budget and seeds; only
its overrides (the loss) differ. Hyper-parameters in a row's ``grid`` are chosen by the mean PSNR on
the **validation** split (seed 0); the test images are never used for a choice. Intervals:
:func:`selfrecon.metrics.seeded_mean_ci` (test images and, for the ``main`` rows, training seeds);
target gaps are paired over the same test images.

Finished runs are reused when their config is unchanged (``bench.json`` beside the checkpoints);
``--force`` trains again.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from selfrecon.cli.config import (
    GROUP_METHODS,
    BenchRow,
    BenchSection,
    read_yaml,
    set_key,
    validate_config,
)
from selfrecon.errors import ConfigError, DataError

__all__ = ["cmd_bench", "load_experiment", "RowResult", "run_experiment"]

DEFAULT_CONFIGS = Path("benchmarks") / "configs"
DEFAULT_OUT = Path("benchmarks") / "results"
_SAMPLE = "sample.pt"
_RESULT = "bench.json"


# -- loading ------------------------------------------------------------------------------------
def load_experiment(path: str | Path) -> tuple[dict, BenchSection]:
    """``(raw config without the bench section, bench section)`` of an experiment file."""
    path = Path(path)
    raw = read_yaml(path)
    cfg = validate_config(copy.deepcopy(raw), str(path))
    if cfg.bench is None:
        raise ConfigError(f"{path} has no bench section; it is a config, not a benchmark")
    if cfg.data.source != "builtin":
        raise ConfigError(f"{path}: benchmarks run on built-in data (data.source: builtin)")
    raw.pop("bench", None)
    return raw, cfg.bench


def _find(names: list[str], configs: Path) -> list[Path]:
    if not names:
        found = sorted(configs.glob("*.yaml"))
        if not found:
            raise ConfigError(f"no benchmark configs in {configs}; pass --configs DIR")
        return found
    out = []
    for n in names:
        p = Path(n)
        cand = p if p.suffix in (".yaml", ".yml") else configs / f"{n}.yaml"
        if not cand.is_file():
            have = ", ".join(q.stem for q in sorted(configs.glob("*.yaml")))
            raise ConfigError(f"no benchmark {n!r} ({cand} not found); available: {have}")
        out.append(cand)
    return out


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
    return s or "default"


def _folders(names: list[str]) -> dict[str, str]:
    """A run-folder name per row or setting name, distinct for distinct names: the ASCII slug,
    with a short hash of the name appended where two names share a slug ("REI" and "REI σ̂"
    once trained into one folder, each run overwriting the other's checkpoints)."""
    slugs = [_slug(n) for n in names]
    return {
        n: s if slugs.count(s) == 1 else f"{s}-{hashlib.sha256(n.encode()).hexdigest()[:6]}"
        for n, s in zip(names, slugs, strict=True)
    }


def _with(raw: dict, sets: dict) -> dict:
    out = copy.deepcopy(raw)
    for k, v in sets.items():
        set_key(out, k.split("."), copy.deepcopy(v))
    return out


# -- results ------------------------------------------------------------------------------------
@dataclass
class RowResult:
    """Scores of one row in one setting: ``psnr[seed][image]`` and friends."""

    row: str
    kind: str  # "learned" | "classical"
    seeds: list[int]
    psnr: list[list[float]]
    ssim: list[list[float]] | None
    images: list[str]
    steps: int | None = None
    wall_s: float | None = None
    peak_mb: float | None = None
    cost_s: float = 0.0  # compute of the whole row: every grid point and seed (cached or not)
    chosen: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # extra test set → psnr[seed][image]
    sample: torch.Tensor | None = None

    def stats(self) -> dict:
        from selfrecon.metrics import seeded_mean_ci

        m, hw, sd = seeded_mean_ci(self.psnr)
        out = {"psnr": m, "psnr_ci": hw, "psnr_seed_sd": sd}
        if self.ssim:
            s, shw, _ = seeded_mean_ci(self.ssim)
            out.update(ssim=s, ssim_ci=shw)
        for name, vals in self.extra.items():
            out[f"psnr_{name}"] = seeded_mean_ci(vals)[0]
        return out


def _hash(text: str) -> str:
    import selfrecon

    return hashlib.sha256((selfrecon.__version__ + text).encode()).hexdigest()[:16]


# -- evaluation of a model on datasets ----------------------------------------------------------
def _score(model, physics, data, device) -> tuple[list[float], list[float] | None, list[str]]:
    from selfrecon.training.evaluation import evaluate

    rows = evaluate(model.to(device), physics.to(device), data, batch_size=16, device=device)
    ssim = [r["ssim"] for r in rows] if "ssim" in rows[0] else None
    return [r["psnr"] for r in rows], ssim, [r["item"] for r in rows]


@torch.no_grad()
def _sample(model, physics, data, device) -> torch.Tensor:
    item = data[0]
    y = item["y"][None].to(device)
    p = physics.to(device)
    if "params" in item:
        p = p.update(**{k: v[None].to(device) for k, v in item["params"].items()})
    model.eval()
    return p.display(model(y, p))[0].float().cpu()


def _extra_sets(cfg, exp, bench: BenchSection) -> dict:
    from selfrecon.data import MeasuredDataset, builtin

    out = {}
    for e in bench.extra_test:
        images = builtin(e.name, "test", cfg.data.size, n=e.n, seed=cfg.data.seed)
        params_fn = getattr(exp.test, "params_fn", None)
        out[e.name] = MeasuredDataset(images, exp.physics, cfg.data.seed + 1, params_fn=params_fn)
    return out


# -- learned rows -------------------------------------------------------------------------------
def _heap_in_use() -> float | None:
    """Bytes the C heap has handed out now (glibc ``mallinfo2``: arenas + mmap'd blocks), or
    ``None`` where that call does not exist. Unlike the resident set it falls when memory is
    freed, so consecutive runs in one process are measured alike."""
    import ctypes
    import ctypes.util

    global _MALLINFO
    if _MALLINFO is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
            fn = libc.mallinfo2

            class Info(ctypes.Structure):
                _fields_ = [
                    (n, ctypes.c_size_t)
                    for n in (
                        "arena",
                        "ordblks",
                        "smblks",
                        "hblks",
                        "hblkhd",
                        "usmblks",
                        "fsmblks",
                        "uordblks",
                        "fordblks",
                        "keepcost",
                    )
                ]

            fn.restype = Info
            _MALLINFO = fn
        except (OSError, AttributeError):
            _MALLINFO = False
    if _MALLINFO is False:
        return None
    info = _MALLINFO()
    return float(info.uordblks + info.hblkhd)


_MALLINFO = None


class _PeakMemory:
    """Peak memory a block allocates beyond what was in use at its start (MB): the CUDA
    allocator's peak on CUDA, else the C heap in use (:func:`_heap_in_use`), sampled every
    10 ms by a thread; ``nan`` where neither can be read."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, float("nan")

    def __enter__(self):
        import threading

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        self._base = _heap_in_use()
        if self._base is None:
            return self
        self._max = self._base
        self._stop = threading.Event()

        def poll():
            while not self._stop.wait(0.01):
                self._max = max(self._max, _heap_in_use())

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        elif self._base is not None:
            self._stop.set()
            self._thread.join()
            self.peak = (max(self._max, _heap_in_use()) - self._base) / 2**20
        return False


def _train(cfg_path: Path, log: Path, device: torch.device) -> tuple[float, float]:
    """Run ``selfrecon train cfg_path`` (the command itself, in this process, its output in
    ``log``); ``(wall seconds, peak memory MB it allocated)``."""
    import contextlib

    from selfrecon.cli.main import main

    t0 = time.perf_counter()
    with open(log, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        with _PeakMemory(device) as mem:
            code = main(["train", str(cfg_path)])
    wall = time.perf_counter() - t0
    if code != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise DataError(f"benchmark training {cfg_path} failed ({tail[0]}); see {log}")
    return wall, mem.peak


def _run_learned(raw: dict, run_dir: Path, ctx) -> dict:
    """Train (or reuse) one run and score it; returns the stored record."""
    import yaml

    from selfrecon.cli.build import build_experiment, inference_model, load_run
    from selfrecon.cli.commands import _load_weights

    raw = _with(raw, {"output.dir": str(run_dir), "output.overwrite": True})
    text = yaml.safe_dump(raw, sort_keys=True)
    key = _hash(text)
    store = run_dir / _RESULT
    bench, device = ctx.bench, ctx.device
    if not ctx.force and store.is_file():
        rec = json.loads(store.read_text())
        if rec.get("hash") == key:
            rec["sample"] = torch.load(run_dir / _SAMPLE, weights_only=True)
            return rec
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir.with_name(run_dir.name + ".yaml")
    cfg_path.write_text(
        f"# benchmark run (selfrecon bench); train: selfrecon train {cfg_path}\n" + text
    )
    wall, peak = _train(cfg_path, run_dir.with_name(run_dir.name + ".log"), device)
    cfg, _, _, model = load_run(run_dir)
    which = "best" if (run_dir / "checkpoints" / "best.pt").is_file() else "last"
    _load_weights(run_dir, model, which)
    net = inference_model(cfg, model)
    exp = build_experiment(cfg)
    psnr, ssim, names = _score(net, exp.physics, exp.test, device)
    val = _score(net, exp.physics, exp.val, device)[0] if exp.val is not None else None
    extra = {
        k: [_score(net, exp.physics, d, device)[0]] for k, d in _extra_sets(cfg, exp, bench).items()
    }
    from selfrecon.training.plots import read_metrics

    steps = int(read_metrics(run_dir / "metrics.csv")[-1]["step"])
    rec = {
        "hash": key,
        "psnr": psnr,
        "ssim": ssim,
        "images": names,
        "val_psnr": sum(val) / len(val) if val else None,
        "extra": extra,
        "steps": steps,
        "wall_s": wall,
        "peak_mb": peak,
        "checkpoint": which,
    }
    store.write_text(json.dumps(rec))
    torch.save(_sample(net, exp.physics, exp.test, device), run_dir / _SAMPLE)
    rec["sample"] = torch.load(run_dir / _SAMPLE, weights_only=True)
    return rec


def _grid_points(grid: dict) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*grid.values())]


def _learned_row(
    row: BenchRow, raw: dict, over: dict, root: Path, seeds: list[int], ctx
) -> RowResult:
    base = _with(_with(raw, row.set), over)
    chosen: dict = {}
    points = ctx.grid(row.grid)
    cost = 0.0
    if len(points) > 1:  # choose on the validation split with the first seed
        best = None
        for k, point in enumerate(points):
            rec = _run_learned(
                _with(base, {**point, "train.seed": seeds[0]}),
                root / f"grid{k}" / f"seed{seeds[0]}",
                ctx,
            )
            cost += rec["wall_s"]
            ctx.say(f"    {row.name} {point}: validation PSNR {rec['val_psnr']:.2f} dB")
            if best is None or rec["val_psnr"] > best[0]:
                best = (rec["val_psnr"], k, point)
        _, k_best, chosen = best
        run_root = root / f"grid{k_best}"
    else:
        chosen = points[0] if points and points[0] else {}
        run_root = root
    recs = [
        _run_learned(_with(base, {**chosen, "train.seed": s}), run_root / f"seed{s}", ctx)
        for s in seeds
    ]
    extra = {k: [r["extra"][k][0] for r in recs] for k in recs[0]["extra"]}
    if len(points) > 1:  # the chosen point's first seed is already counted
        cost -= recs[0]["wall_s"]
    cost += sum(r["wall_s"] for r in recs)
    return RowResult(
        row.name,
        "learned",
        list(seeds),
        [r["psnr"] for r in recs],
        [r["ssim"] for r in recs] if recs[0]["ssim"] else None,
        recs[0]["images"],
        steps=recs[0]["steps"],
        wall_s=sum(r["wall_s"] for r in recs) / len(recs),
        peak_mb=max(r["peak_mb"] for r in recs),
        cost_s=cost,
        chosen=chosen,
        extra=extra,
        sample=recs[0]["sample"],
    )


# -- classical rows -----------------------------------------------------------------------------
def build_classical(spec: str | dict) -> torch.nn.Module:
    """A classical row's model: a solver of :mod:`selfrecon.models.solvers` or a baseline of
    :mod:`selfrecon.classical.baselines`, by name or ``{"name": ..., **parameters}``."""
    from selfrecon.classical.baselines import BASELINES
    from selfrecon.models.artifact import build_solver

    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    if spec["name"] in BASELINES:
        name = spec.pop("name")
        try:
            return BASELINES[name](**spec)
        except TypeError as err:
            raise ConfigError(f"classical baseline {name!r}: {err}") from None
    return build_solver(spec)


def _classical_row(row: BenchRow, exp, extra_sets: dict, ctx) -> RowResult:
    spec = {"name": row.classical} if isinstance(row.classical, str) else dict(row.classical)
    spec = ctx.solver(spec)
    points = ctx.grid(row.grid)
    chosen = points[0] if points and points[0] else {}
    t_all = time.perf_counter()
    if len(points) > 1:
        scored = []
        for point in points:
            val = _score(build_classical({**spec, **point}), exp.physics, exp.val, ctx.device)[0]
            scored.append((sum(val) / len(val), point))
            ctx.say(f"    {row.name} {point}: validation PSNR {scored[-1][0]:.2f} dB")
        chosen = max(scored, key=lambda t: t[0])[1]
    model = build_classical({**spec, **chosen})
    t0 = time.perf_counter()
    psnr, ssim, names = _score(model, exp.physics, exp.test, ctx.device)
    wall = time.perf_counter() - t0
    extra = {k: [_score(model, exp.physics, d, ctx.device)[0]] for k, d in extra_sets.items()}
    cost = time.perf_counter() - t_all
    return RowResult(
        row.name,
        "classical",
        [0],
        [psnr],
        [ssim] if ssim else None,
        names,
        wall_s=wall,
        cost_s=cost,
        chosen=chosen,
        extra=extra,
        sample=_sample(model, exp.physics, exp.test, ctx.device),
    )


# -- one experiment -----------------------------------------------------------------------------
@dataclass
class _Ctx:
    bench: BenchSection
    device: str
    force: bool
    quiet: bool = False
    quick: bool = False

    def grid(self, grid: dict) -> list[dict]:
        """The grid's points (``--quick``: its first two values per key)."""
        return _grid_points({k: v[:2] for k, v in grid.items()} if self.quick else grid)

    def solver(self, spec: dict) -> dict:
        """A classical spec (``--quick``: at most 5 iterations)."""
        if self.quick and "n_iter" in spec:
            return {**spec, "n_iter": min(int(spec["n_iter"]), 5)}
        return spec

    def say(self, msg: str) -> None:
        if not self.quiet:
            print(msg, flush=True)


@dataclass
class SettingResult:
    name: str
    rows: list[RowResult]
    verdict: str
    recommended: str | None = None
    y: torch.Tensor | None = None
    x: torch.Tensor | None = None
    pinv: torch.Tensor | None = None


def _identify(cfg, exp, budget: float) -> str:
    from selfrecon.groups import build_group
    from selfrecon.theory import quick_check

    if cfg.loss.method not in GROUP_METHODS:
        return f"no group ({cfg.loss.method})"
    rep = quick_check(exp.physics, build_group(cfg.loss.group), time_budget=budget)
    return f"{rep.operator} with {rep.group}: {rep.verdict} ({rep.reason})"


def run_setting(
    raw: dict, bench: BenchSection, setting, root: Path, ctx, over: dict
) -> SettingResult:
    """All rows of one setting: ``raw`` → setting overrides → row overrides → ``over``."""
    from selfrecon.cli.build import build_experiment

    sraw = _with(raw, setting.set)
    recommended = setting.recommended or bench.recommended
    rec_row = next((r for r in bench.rows if r.name == recommended), None)
    cfg = validate_config(_with(_with(sraw, rec_row.set if rec_row else {}), over), "bench")
    exp = build_experiment(cfg)
    verdict = _identify(cfg, exp, 2.0 if ctx.quick else 10.0)
    extra = _extra_sets(cfg, exp, bench)
    rows = []
    for row in bench.rows:
        if row.settings is not None and setting.name not in row.settings:
            continue
        ctx.say(f"  [{setting.name or 'default'}] {row.name}")
        if row.classical is not None:
            rows.append(_classical_row(row, exp, extra, ctx))
        else:
            main = setting.main if setting.main is not None else bench.main
            seeds = bench.seeds if row.name in main and not ctx.quick else bench.seeds[:1]
            folder = _folders([r.name for r in bench.rows])[row.name]
            rows.append(_learned_row(row, sraw, over, root / folder, seeds, ctx))
    item = exp.test[0]
    from selfrecon.models.solvers import Pinv

    has_pinv_row = any(r.classical in ("pinv", {"name": "pinv"}) for r in bench.rows)
    pinv = None if has_pinv_row else _sample(Pinv(), exp.physics, exp.test, ctx.device)
    x = exp.physics.display(item["x"][None])[0]
    return SettingResult(setting.name, rows, verdict, recommended, item["y"], x, pinv)


def run_experiment(
    path: Path,
    out: Path,
    device: str = "auto",
    quick: bool = False,
    force: bool = False,
    sets: list[str] | None = None,
    quiet: bool = False,
):
    """Run every setting and row of the experiment at ``path``; write its tables and figures.

    ``sets`` (``"key=value"``, as ``--set``) change the experiment's base config first (paper
    sizes on a GPU, for instance)."""
    from selfrecon.cli.config import apply_sets
    from selfrecon.training.distributed import resolve_device

    raw, bench = load_experiment(path)
    apply_sets(raw, sets)
    name = path.stem
    ctx = _Ctx(bench, resolve_device(device), force, quiet, quick)
    over = {
        "train.device": device,
        "train.progress": "none",
        "train.plot_every": 0,
        "train.check_identifiability": False,  # the bench reports it once per setting
    }
    if quick:
        over.update(bench.quick)
    root = out / "runs" / name
    t0 = time.perf_counter()
    ctx.say(f"benchmark {name}: {bench.title}")
    settings = bench.settings
    if quick and len(settings) > 2:  # a smoke test: the first and the last setting
        settings = [settings[0], settings[-1]]
    folders = _folders([s.name for s in bench.settings])
    results = [run_setting(raw, bench, s, root / folders[s.name], ctx, over) for s in settings]
    from selfrecon.cli.bench_report import write_experiment

    write_experiment(name, bench, results, out, quick, time.perf_counter() - t0, over)
    return results


# -- the command --------------------------------------------------------------------------------
def cmd_bench(args) -> int:
    from selfrecon.cli.bench_report import write_results_md

    configs = Path(args.configs) if args.configs else DEFAULT_CONFIGS
    out = Path(args.out) if args.out else DEFAULT_OUT
    paths = _find(list(args.names), configs)
    out.mkdir(parents=True, exist_ok=True)
    for p in paths:
        run_experiment(p, out, args.device, args.quick, args.force, list(args.sets))
    report = Path(args.report) if args.report else out.parent / "RESULTS.md"
    write_results_md(
        out, report, [(p.stem, load_experiment(p)[1].notes) for p in _find([], configs)]
    )
    print(f"wrote {report} and {out}/")
    return 0
