"""The ``selfrecon`` subcommands (imported lazily by :mod:`selfrecon.cli.main`).

Each ``cmd_NAME(args)`` parses nothing and computes nothing scientific: it loads a config, calls the
library, prints a summary and writes files. Errors are raised as :class:`~selfrecon.errors`
exceptions with one-line messages; ``main`` turns them into exit code 2.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from selfrecon.cli.bench import cmd_bench  # noqa: F401 - dispatched by name from main
from selfrecon.cli.build import (
    RUN_META,
    Experiment,
    build_experiment,
    group_of,
    inference_model,
    load_run,
    loss_of,
    model_of,
    run_meta,
)
from selfrecon.cli.config import GROUP_METHODS, Config, load_config, validate_config
from selfrecon.errors import ConfigError, DataError
from selfrecon.training import Trainer
from selfrecon.training.evaluation import dry_run as library_dry_run
from selfrecon.training.evaluation import evaluate, predict
from selfrecon.training.run_folder import is_run_folder

_STATE: dict = {"run": None}


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _print(*a, **k) -> None:
    if _rank() == 0:
        print(*a, **k, flush=True)


def interrupt_message() -> str:
    run = _STATE.get("run")
    if run is not None and (Path(run) / "checkpoints" / "last.pt").is_file():
        return f"saved {run}/checkpoints/last.pt; resume with `selfrecon train --resume {run}`"
    return "nothing was saved; run the command again"


# -- helpers ------------------------------------------------------------------------------------
def dry_run(exp: Experiment, model, loss) -> dict:
    """The library's dry run on the training set: one loss evaluation on ≤ 2 items."""
    return library_dry_run(model, loss, exp.physics, exp.train)


def _describe_physics(physics) -> str:
    op = physics.operator
    spec = physics.spec()
    parts = [f"{getattr(op, 'name', type(op).__name__)}"]
    extra = getattr(op, "extra_repr", lambda: "")()
    if extra:
        parts.append(f"({extra})")
    noise = _describe_noise(physics.noise)
    parts.append(noise if physics.noise is None else f"noise {noise}")
    if spec.get("kind") not in (None, "linear"):
        parts.insert(0, f"[{spec['kind']}]")
    return " ".join(parts)


def _scalarish(v) -> bool:
    try:
        return torch.as_tensor(v).numel() == 1
    except Exception:  # noqa: BLE001
        return False


def _shape(t) -> str:
    dt = " complex" if t.is_complex() else ""
    return "(" + ", ".join(str(s) for s in t.shape) + ")" + dt


# -- init ---------------------------------------------------------------------------------------
def cmd_init(args) -> int:
    from selfrecon.cli.templates import TASKS, render

    if args.task not in TASKS:
        raise ConfigError(f"unknown task {args.task!r}; choose one of {', '.join(TASKS)}")
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out} already exists; pass --overwrite or choose another -o file")
    if out.exists() and out.is_dir():
        raise ConfigError(f"{out} is a folder; pass a file name with -o, e.g. -o config.yaml")
    if not out.parent.exists():
        raise ConfigError(f"folder {out.parent} does not exist; create it first")
    text = render(args.task)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=str(out.parent))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"wrote {out} ({args.task}); next: selfrecon check {out}")
    return 0


# -- check / identify ---------------------------------------------------------------------------
def _build_all(cfg: Config):
    exp = build_experiment(cfg)
    torch.manual_seed(cfg.train.seed)
    model = model_of(cfg, exp.channels)
    model.check_physics(exp.physics)  # the library's own check, before any compute
    loss = loss_of(cfg, exp)
    return exp, model, loss


def _identify(cfg: Config, physics, budget: float, verbose: bool):
    from selfrecon.theory import quick_check

    group = group_of(cfg) if cfg.loss.method in GROUP_METHODS else None
    return quick_check(physics, group, time_budget=budget)


def cmd_check(args) -> int:
    cfg, _ = load_config(args.config, args.sets)
    exp, model, loss = _build_all(cfg)
    item = exp.train[0]
    terms = dry_run(exp, model, loss)
    from selfrecon.models import count_parameters

    d = cfg.data
    src = {"builtin": f"built-in {d.name!r}", "measurements": d.path, "files": d.files}[d.source]
    dagger = "†" if cfg.model.init == "pinv" else "ᵀ"
    length = f"{cfg.train.steps or cfg.train.epochs} {'steps' if cfg.train.steps else 'epochs'}"
    lines = [
        f"config      {args.config}: OK",
        f"data        {d.source}: {src}",
        f"            train {len(exp.train)}, val {len(exp.val) if exp.val else 0}, "
        f"test {len(exp.test) if exp.test else 0} items; "
        f"ground truth {'yes' if 'x' in item else 'no'}",
        f"shapes      y {_shape(item['y'])}"
        + (f", x {_shape(item['x'])}" if "x" in item else "")
        + f", network channels {exp.channels}",
        f"physics     {_describe_physics(exp.physics)}",
        *_noise_lines(cfg, exp),
        f"model       {cfg.model.name} (width {cfg.model.width}, depth {cfg.model.depth}), "
        f"{count_parameters(model):,} parameters, "
        + (
            f"MoDL: {cfg.model.unroll}× x ← (AᴴA + λI)⁻¹(Aᴴy + λG(x)) from A{dagger}y"
            if cfg.model.unroll
            else f"f(y) = G(A{dagger}y)"
        ),
        f"loss        {cfg.loss.method}: {' '.join(repr(loss).split())}",
        "            one batch: " + ", ".join(f"{k} {v:.4g}" for k, v in terms.items()),
        f"train       {length}, "
        f"batch {cfg.train.batch_size}, lr {cfg.train.lr:g}, schedule {cfg.train.schedule}, "
        f"seed {cfg.train.seed}, device {cfg.train.device}",
        f"output      {cfg.output.dir}",
    ]
    print("\n".join(lines))
    if not args.no_identify:
        report = _identify(cfg, exp.physics, 10.0, False)
        print("identifiability")
        print("  " + str(report).replace("\n", "\n  "))
    return 0


def _noise_lines(cfg: Config, exp) -> list[str]:
    """The noise level estimated from the training measurements, beside the configured one;
    a warning line for each configured level outside the estimate's interval."""
    from selfrecon.cli.build import estimable, estimate_level

    est = exp.noise_estimate
    if est is not None:
        return [f"noise       auto: {est}"]
    model = estimable(exp.physics)
    if model is None:
        return ["noise       not estimated from the data (no estimator for this physics)"]
    try:
        est = estimate_level(cfg, exp.physics, exp.train, model).estimate
    except DataError as err:  # too few samples: the check is advisory, the config may be fine
        return [f"noise       not estimated from the data: {err}"]
    configured = exp.physics.noise
    lines = [f"noise       estimated {est}; configured {_describe_noise(configured)}"]
    if configured is not None:
        lines += [f"warning: {w} — check physics.noise" for w in est.disagreements(configured)]
    return lines


def _describe_noise(noise) -> str:
    """``gaussian(sigma=0.1)`` (scalar levels only), or ``noiseless``."""
    if noise is None:
        return "noiseless"
    vals = ", ".join(
        f"{k}={float(v):g}" for k, v in noise.spec().items() if k != "name" and _scalarish(v)
    )
    return f"{noise.name}({vals})"


def cmd_identify(args) -> int:
    from selfrecon.theory import identifiability

    cfg, _ = load_config(args.config, args.sets)
    exp = build_experiment(cfg)
    group = group_of(cfg)
    if cfg.loss.method not in GROUP_METHODS:
        print(f"note: loss.method {cfg.loss.method!r} uses no group; checking loss.group anyway")
    report = identifiability(exp.physics, group, time_budget=args.time_budget)
    print(report)
    return 0


# -- simulate -----------------------------------------------------------------------------------
def _is_simulation(path: Path) -> bool:
    """True for a folder written by `selfrecon simulate` (config.yaml + split measurement sets)."""
    splits = [path / s for s in ("train", "val", "test") if (path / s).is_dir()]
    known = {"config.yaml", "train", "val", "test"}
    return (
        (path / "config.yaml").is_file()
        and bool(splits)
        and all((s / "manifest.json").is_file() for s in splits)
        and all(p.name in known for p in path.iterdir())
    )


def cmd_simulate(args) -> int:
    from selfrecon.data import MeasurementSet, atomic_folder

    cfg, resolved = load_config(args.config, args.sets)
    if cfg.data.source != "builtin":
        raise ConfigError(
            f"simulate makes measurements from built-in images; data.source is "
            f"{cfg.data.source!r} (already measurements)"
        )
    out = Path(args.output)
    if out.exists() and any(out.iterdir()):
        if not args.overwrite:
            raise DataError(
                f"{out} already exists and is not empty; pass --overwrite or another -o"
            )
        if not _is_simulation(out):
            # --overwrite replaces an earlier `selfrecon simulate` output, never a user's folder
            raise DataError(
                f"{out} is not the output of `selfrecon simulate`; --overwrite only replaces such "
                "a folder, so choose another -o"
            )
    if not out.parent.exists():
        raise DataError(f"folder {out.parent} does not exist; create it first")
    exp = build_experiment(cfg)
    with atomic_folder(out) as tmp:
        for split, ds in (("train", exp.train), ("val", exp.val), ("test", exp.test)):
            if ds is None:
                continue
            # the Subsets of MeasuredDataset hold the simulated items: write them as they are
            y = [ds[i] for i in range(len(ds))]
            params = None
            if "params" in y[0]:
                params = {k: torch.stack([it["params"][k] for it in y]) for k in y[0]["params"]}
            ms = MeasurementSet.from_arrays(
                torch.stack([it["y"] for it in y]),
                exp.physics,
                x=torch.stack([it["x"] for it in y]),
                params=params,
            )
            ms.manifest["seed"] = cfg.data.seed
            ms.save(tmp / split)
            print(f"{split:5s} {len(ds)} measurements  y {_shape(y[0]['y'])}")
        import yaml

        with open(tmp / "config.yaml", "w") as f:
            f.write("# config used by `selfrecon simulate` to make these measurement sets\n")
            yaml.safe_dump(resolved, f, sort_keys=False)
    print(
        f"wrote {out}/{{train,val,test}}; train on it with data: {{source: measurements, "
        f"path: {out}}}"
    )
    return 0


# -- train --------------------------------------------------------------------------------------
def run_training(cfg: Config, resolved: dict, resume: bool = False, quiet: bool = False):
    """Build, dry-run, then train; returns ``(trainer, summary, experiment)``."""
    run = Path(cfg.output.dir)
    if resume and _rank() == 0 and not (run / "checkpoints" / "last.pt").is_file():
        raise ConfigError(
            f"{run} has no checkpoints/last.pt to resume from; start a new run without --resume"
        )
    exp, model, loss = _build_all(cfg)
    dry_run(exp, model, loss)
    tc = cfg.train.model_dump()
    # the Trainer's run folder applies the one overwrite policy (library and CLI alike)
    tc.update(resume=bool(resume), overwrite=cfg.output.overwrite)
    meta = run_meta(exp, model)
    trainer = Trainer(
        model,
        loss,
        exp.physics,
        train=exp.train,
        val=exp.val,
        config=tc,
        run_dir=run,
        resolved_config=resolved,
        extra_files={RUN_META: lambda path: torch.save(meta, path)},
    )
    _STATE["run"] = str(run)
    t0 = time.perf_counter()
    try:
        summary = trainer.fit()
    except KeyboardInterrupt:
        raise
    except BaseException:
        trainer.run.discard_if_empty_run()
        raise
    summary.seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
    return trainer, summary, exp


def cmd_train(args) -> int:
    sets = list(args.sets)
    if args.resume:
        run = Path(args.resume)
        if not run.is_dir() or not (run / "config.yaml").is_file():
            raise ConfigError(
                f"{run} is not a selfrecon run folder (no config.yaml); pass the "
                "folder `selfrecon train` wrote"
            )
        cfg_path = Path(args.config) if args.config else run / "config.yaml"
        sets.append(f"output.dir={run}")
    elif args.config is None:
        raise ConfigError("train needs a config file (selfrecon train config.yaml) or --resume RUN")
    else:
        cfg_path = Path(args.config)
    cfg, resolved = load_config(cfg_path, sets)
    _, summary, _ = run_training(cfg, resolved, resume=bool(args.resume))
    run = summary.run_dir
    _print(
        f"run folder: {run}  ({summary.epochs} epochs, {summary.steps} steps, "
        f"{summary.seconds:.0f} s)\n"
        f"best: {summary.best_metric} = {summary.best_value} at epoch {summary.best_epoch}\n"
        f"plots: {run}/plots/\n"
        f"next: selfrecon eval {run}    selfrecon predict {run} --input Y --output OUT"
    )
    return 0


# -- eval ---------------------------------------------------------------------------------------
def _load_weights(run: Path, model, which: str) -> Path:
    from selfrecon.training import load_checkpoint

    path = run / "checkpoints" / f"{which}.pt"
    if not path.is_file():
        other = "last" if which == "best" else "best"
        hint = (
            f"use --checkpoint {other}"
            if (run / "checkpoints" / f"{other}.pt").is_file()
            else "train first (selfrecon train) or resume it"
        )
        raise DataError(f"checkpoint {path} does not exist; {hint}")
    state = load_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        raise DataError(
            f"checkpoint {path} does not fit the run's model ({str(err).splitlines()[0]}); "
            "was the run folder edited?"
        ) from None
    return path


def _table(rows: list[dict], label: str, model=None) -> str:
    """Mean PSNR/SSIM of ``A† y``, of the classical reconstruction ``model`` refines (if any) and
    of the learned model."""
    from selfrecon.training.evaluation import classical_init, init_name

    init = classical_init(model) if model is not None else None

    def mean(k):
        vals = [r[k] for r in rows if k in r]
        return sum(vals) / len(vals) if vals else float("nan")

    has_ssim = "ssim" in rows[0]
    head = f"{'':22s}{'PSNR (dB)':>10s}" + (f"{'SSIM':>8s}" if has_ssim else "")
    lines = [f"{len(rows)} held-out images with ground truth", head]
    shown = [("A†y (linear)", "pinv")]
    if init is not None and "psnr_init" in rows[0]:
        shown.append((f"{init_name(init)} (classical)", "init"))
    for name, key in (*shown, (label, "")):
        suf = f"_{key}" if key else ""
        line = f"{name:22s}{mean('psnr' + suf):10.2f}"
        if has_ssim:
            line += f"{mean('ssim' + suf):8.3f}"
        lines.append(line)
    return "\n".join(lines)


def _write_csv(rows: list[dict], path: Path) -> Path:
    keys = list(rows[0])
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        means = {"item": "mean", **{k: sum(r[k] for r in rows) / len(rows) for k in keys[1:]}}
        w.writerow(means)
    os.replace(tmp, path)
    return path


def _eval_data(cfg: Config, data_arg: str | None):
    from selfrecon.data import MeasurementSet

    if data_arg:
        p = Path(data_arg)
        if not p.exists():
            raise DataError(f"--data {p} does not exist; pass a measurement set folder")
        if (p / "test" / "manifest.json").is_file() and not (p / "manifest.json").is_file():
            p = p / "test"
        ds = MeasurementSet(p)
        return ds, ds.physics, p.name
    exp = build_experiment(cfg)
    ds = exp.test if exp.test is not None else exp.val
    if ds is None:
        raise DataError(
            "this run has no test or validation data; pass a measurement set with ground truth "
            "via --data"
        )
    return ds, exp.physics, "test" if exp.test is not None else "val"


def cmd_eval(args) -> int:
    run = Path(args.run)
    cfg, _, _, model = load_run(run)
    ckpt = _load_weights(run, model, args.checkpoint)
    ds, physics, label = _eval_data(cfg, args.data)
    rows = evaluate(inference_model(cfg, model), physics, ds, args.batch_size)
    out = _write_csv(rows, run / f"eval_{args.checkpoint}_{label}.csv")
    print(_table(rows, f"learned ({args.checkpoint}.pt)", model))
    print(f"per-image values: {out}  (checkpoint {ckpt})")
    return 0


# -- predict ------------------------------------------------------------------------------------
def _inside(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def _predict_inputs(inp: Path, physics, mask, angles):
    from selfrecon.data import MeasurementSet, assemble

    if inp.is_dir() and (inp / "manifest.json").is_file():
        ds = MeasurementSet(inp)
        names = ds.names or [f"item_{i:04d}" for i in range(len(ds))]
        return ds, ds.physics, names
    if inp.is_file():
        try:
            ds = assemble(inp, physics, mask_file=mask, angles_file=angles, stacked=False)
        except DataError:
            ds = assemble(inp, physics, mask_file=mask, angles_file=angles, stacked=True)
    else:
        ds = assemble(inp, physics, mask_file=mask, angles_file=angles)
    return ds, ds.physics, list(ds.names)


def cmd_predict(args) -> int:
    import numpy as np

    from selfrecon.data import write_image

    run = Path(args.run)
    inp, out = Path(args.input), Path(args.output)
    if not inp.exists():
        raise DataError(
            f"--input {inp} does not exist; pass a .npy file, a folder or a measurement set"
        )
    in_dir = inp if inp.is_dir() else inp.parent
    if _inside(out, in_dir):
        raise DataError(
            f"--output {out} is inside the input folder {in_dir}; choose an output folder "
            "outside the input"
        )
    if out.exists() and not out.is_dir():
        raise DataError(f"--output {out} is a file; pass a folder")
    cfg, _, physics, model = load_run(run)
    ckpt = _load_weights(run, model, args.checkpoint)
    ds, physics, names = _predict_inputs(inp, physics, args.mask, args.angles)
    targets = [(out / f"{n}.npy", out / f"{n}.png") for n in names]
    existing = [str(p) for t in targets for p in t if p.exists()]
    if existing and not args.overwrite:
        raise DataError(f"{existing[0]} already exists; pass --overwrite or another --output")
    net = inference_model(cfg, model).eval()
    created_dir = not out.exists()
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for (npy, png), (_, x_hat) in zip(
            targets, predict(net, physics, ds, args.batch_size), strict=True
        ):
            tmp = npy.with_name(f".{npy.name}.tmp.npy")
            np.save(tmp, x_hat.float().numpy())
            os.replace(tmp, npy)
            written.append(npy)
            write_image(png, x_hat.float(), overwrite=True)
            written.append(png)
    except BaseException:
        for f in written:
            f.unlink(missing_ok=True)
        if created_dir:
            shutil.rmtree(out, ignore_errors=True)
        raise
    print(
        f"reconstructed {len(names)} measurement(s) with {ckpt} → {out}/ (.npy float32 (C, H, W) "
        "+ .png preview)"
    )
    return 0


# -- plot / info / calibrate --------------------------------------------------------------------
def cmd_plot(args) -> int:
    from selfrecon.training import plot_run

    run = Path(args.run)
    if not run.is_dir():
        raise DataError(f"run folder {run} does not exist; pass the folder `selfrecon train` wrote")
    files = plot_run(run)
    for f in files:
        print(f"wrote {f}")
    return 0


def cmd_info(args) -> int:
    import importlib.metadata as md
    import importlib.util
    import platform

    import selfrecon
    from selfrecon.data import list_builtin

    def version(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    print(
        f"selfrecon {selfrecon.__version__}  (python {platform.python_version()}, "
        f"{platform.platform()})"
    )
    for pkg in ("torch", "numpy", "scikit-image", "pydantic", "pyyaml", "matplotlib"):
        print(f"  {pkg:14s} {version(pkg) or 'missing'}")
    cuda = torch.cuda.is_available()
    print(
        f"device: {'cuda, ' + str(torch.cuda.device_count()) + ' GPU(s): ' if cuda else 'cpu'}"
        + (
            ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            if cuda
            else f" ({torch.get_num_threads()} threads)"
        )
    )
    print("optional extras:")
    extras = {"medical": ("pydicom", "nibabel", "h5py"), "data": ("mlxtend", "nilearn", "nibabel")}
    for extra, mods in extras.items():
        have = [m for m in mods if importlib.util.find_spec(m) is not None]
        missing = [m for m in mods if m not in have]
        state = (
            "installed"
            if not missing
            else f"missing {', '.join(missing)} (pip install 'selfrecon[{extra}]')"
        )
        print(f"  [{extra}] {state}")
    print("built-in datasets:")
    for d in list_builtin():
        state = "available" if d["available"] else f"unavailable: {d['reason']}"
        print(f"  {d['name']:12s} {state}")
    return 0


def cmd_calibrate(args) -> int:
    from selfrecon.classical import calibrate_files

    res = calibrate_files(
        args.noisy,
        args.denoiser,
        args.grid,
        args.output,
        truth_path=args.truth,
        overwrite=args.overwrite,
        width=args.width,
        noise_var=args.noise_var,
        output=args.denoised,
    )
    print(res.summary())
    print(f"wrote {args.output}/denoised.png, denoised.npy, calibration.csv, calibration.png")
    return 0


# -- demo ---------------------------------------------------------------------------------------
DEMO = {
    # task: (default overrides, quick overrides) of the task's starter config (templates.py).
    # Sized so that the default run stays well under the README's 3-minute promise on 2 cores and
    # --quick takes seconds; each shows the learned network beside A†y and its classical input on
    # held-out test images. The measured times are stated once, in the README.
    "inpainting": (
        {"data.train": 192, "data.val": 8, "data.test": 16, "train.epochs": 12},
        {"data.train": 48, "data.val": 4, "data.test": 8, "train.epochs": 5},
    ),
    "cs": (
        {"data.train": 512, "data.val": 16, "data.test": 64, "train.epochs": 12},
        {"data.train": 128, "data.val": 16, "data.test": 32, "train.epochs": 8},
    ),
    "mri": (
        # brain-mri has 75 training slices: train + val must stay within them
        {"data.size": 64, "data.train": 64, "data.val": 8, "data.test": 16, "train.epochs": 8},
        {"data.size": 32, "data.train": 64, "data.val": 8, "data.test": 8, "train.epochs": 5},
    ),
    "ct": (
        {"data.train": 128, "data.val": 8, "data.test": 16, "train.epochs": 10},
        {"data.train": 48, "data.val": 4, "data.test": 8, "train.epochs": 5},
    ),
    "denoise": (
        {"data.train": 512, "data.val": 16, "data.test": 64, "train.epochs": 8},
        {"data.train": 256, "data.val": 8, "data.test": 16, "train.epochs": 4},
    ),
}

_METHOD_NAMES = {
    "ei": "EI",
    "rei": "REI",
    "n2s": "Noise2Self",
    "mc": "MC",
    "sure": "SURE",
    "moi": "MOI",
    "moei": "MO-EI",
    "morei": "robust MO-EI",
    "supervised": "supervised",
}


def cmd_demo(args) -> int:
    from selfrecon.cli.config import apply_sets
    from selfrecon.cli.templates import task_config

    raw = task_config(args.task)
    default, quick = DEMO[args.task]
    over = quick if args.quick else default
    out = Path(args.out) if args.out else Path("runs") / f"demo-{args.task}"
    user_sets = list(getattr(args, "sets", None) or [])
    if any(s.strip().startswith("output.") for s in user_sets):
        raise ConfigError("demo --set cannot change output.*; choose the run folder with --out")
    sets = [f"{k}={v}" for k, v in over.items()] + [
        f"output.dir={out}",
        "output.overwrite=true",
        f"train.device={args.device}",
        "train.progress=lines",
        "train.plot_every=0",
        *user_sets,  # last: the user's overrides win (e.g. --set model.norm=none)
    ]
    apply_sets(raw, sets)
    cfg = validate_config(raw, f"demo {args.task}")
    if out.is_dir() and any(out.iterdir()) and not is_run_folder(out):
        raise ConfigError(
            f"--out {out} is a non-empty folder that is not a selfrecon run; choose another --out"
        )
    resolved = cfg.model_dump(mode="json")
    lc = cfg.loss
    _print(
        f"selfrecon demo: {args.task} — {_METHOD_NAMES[lc.method]}"
        + (f" with group {lc.group}" if lc.method in GROUP_METHODS else "")
        + f", {cfg.data.name} {cfg.data.size}×{cfg.data.size}, {cfg.data.train} training "
        f"measurements (no ground truth used), {cfg.train.epochs} epochs"
        + (" [--quick]" if args.quick else "")
    )
    t0 = time.perf_counter()
    trainer, summary, exp = run_training(cfg, resolved)
    if _rank() != 0:
        return 0
    from selfrecon.training import plot_samples

    run = Path(summary.run_dir)
    model = trainer.model
    which = "best" if (run / "checkpoints" / "best.pt").is_file() else "last"
    _load_weights(run, model, which)
    rows = evaluate(inference_model(cfg, model), exp.physics, exp.test)
    _write_csv(rows, run / f"eval_{which}_test.csv")
    samples = trainer.samples()
    panel = plot_samples(samples, run / "plots" / "samples.png", title=f"{args.task} ({which}.pt)")
    print()
    print(_table(rows, f"learned ({_METHOD_NAMES[lc.method]})", model))
    print(f"\ntime {time.perf_counter() - t0:.0f} s; run folder {run}")
    print(f"plots: {run / 'plots' / 'loss.png'}, {panel}")
    print(f"next: selfrecon eval {run}    selfrecon init {args.task} -o config.yaml")
    sys.stdout.flush()
    return 0
