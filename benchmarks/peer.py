"""Time to quality, side by side with the peer library (deepinv), in one alternating run.

    python benchmarks/peer.py --peer-python /path/to/deepinv-venv/bin/python [--steps 600]

For each task (inpainting 30 % missing on natural 64×64; CT with 25 views on ellipses 64×64) three
arms train on the same images with the same UNet (selfrecon's, loaded from source by the peer
worker), the same batches (one seeded index sequence) and Adam at the same learning rate:

* ``deepinv EI``        — deepinv 0.5's ``ArtifactRemoval(mode="pinv")`` + ``MCLoss`` + ``EILoss``
  (the peer's own physics, transforms and losses), in deepinv's environment
  (``_peer_worker.py``);
* ``selfrecon EI``      — the same recipe with selfrecon's physics and losses (per-step parity:
  both run the same convolutions);
* ``selfrecon default`` — the network of ``benchmarks/configs/<task>.yaml`` (classical
  initialiser: biharmonic inpainting with data consistency, or TV for CT).

The arms alternate in chunks of ``--chunk`` steps, so a busy machine slows all of them alike; each
chunk's training time is measured (evaluation excluded) and the test PSNR recorded after it. The
table gives ms/step, the final PSNR, and the training time each arm needs to reach the peer's final
PSNR. Writes ``benchmarks/results/peer.csv``, ``peer.png`` and ``peer.md`` (included in
``RESULTS.md`` by ``selfrecon bench``). Without a peer Python the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from selfrecon.cli.bench import load_experiment
from selfrecon.cli.build import build_model
from selfrecon.cli.config import validate_config
from selfrecon.data import builtin
from selfrecon.groups import Rotate, Shift
from selfrecon.losses import EILoss, MCLoss
from selfrecon.metrics import psnr
from selfrecon.models import ArtifactRemoval, UNet
from selfrecon.physics import Inpainting, Physics, Tomography

ROOT = Path(__file__).resolve().parent
UNET = {"width": 16, "depth": 3}
PEER_INFO: dict = {}  # deepinv's and its torch's versions, as the worker reports them


class Arm:
    """A selfrecon arm: model, physics, loss, Adam; ``train(batches)`` / ``eval()``."""

    def __init__(self, name, model, physics, loss, x_train, x_test, lr, seed):
        torch.manual_seed(seed)
        self.name, self.physics, self.loss = name, physics, loss
        self.model = model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.y_train, self.y_test = physics.A(x_train), physics.A(x_test)
        self.x_test = x_test

    def train(self, indices) -> float:
        self.model.train()
        t0 = time.perf_counter()
        for idx in indices:
            y = self.y_train[idx]
            x_hat = self.model(y, self.physics)
            terms = self.loss(y, x_hat, self.physics, self.model, self.gen)
            self.opt.zero_grad(set_to_none=True)
            sum(terms.values()).backward()
            self.opt.step()
        return time.perf_counter() - t0

    @torch.no_grad()
    def eval(self) -> float:
        self.model.eval()
        out = torch.cat(
            [
                self.model(self.y_test[i : i + 8], self.physics)
                for i in range(0, len(self.y_test), 8)
            ]
        )
        return float(psnr(out.clamp(0, 1), self.x_test))


class PeerArm:
    """The deepinv arm, in its own interpreter (see ``_peer_worker.py``)."""

    def __init__(self, python, task, data_path, lr, seed, batch, threads):
        self.name = "deepinv EI"
        self.proc = subprocess.Popen(
            [python, str(ROOT / "_peer_worker.py"), str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        init = {"cmd": "init", "task": task, "data": str(data_path), "seed": seed}
        self.info = self._ask({**init, "lr": lr, "batch": batch, "unet": UNET})

    def _ask(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the deepinv worker stopped; run it by hand to see why")
        return json.loads(line)

    def train(self, indices) -> float:
        return self._ask({"cmd": "train", "indices": [i.tolist() for i in indices]})["seconds"]

    def eval(self) -> float:
        return self._ask({"cmd": "eval"})["psnr"]

    def close(self) -> None:
        self._ask_quiet()

    def _ask_quiet(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        finally:
            self.proc.wait(timeout=30)


def _data(task: str, n_train: int, n_test: int):
    name = "natural" if task == "inpainting" else "ellipses"
    x_train = torch.stack(list(builtin(name, "train", 64, n=n_train, seed=0)))
    x_test = torch.stack(list(builtin(name, "test", 64, n=n_test, seed=0)))
    return x_train, x_test


def _arms(task, x_train, x_test, lr, seed, peer_python, threads, tmp: Path):
    gen = torch.Generator().manual_seed(0)
    if task == "inpainting":
        op = Inpainting(rate=0.7, img_shape=(64, 64), generator=gen)
        physics = Physics(op)
        loss = MCLoss() + EILoss(Shift(), weight=1.0, n_trans=1)
        extra = {"mask": op.mask[0]}
    else:
        physics = Physics(Tomography(25, 64))
        loss = MCLoss() + EILoss(Rotate(), weight=100.0, n_trans=1)
        extra = {"views": 25}
    raw, _ = load_experiment(ROOT / "configs" / f"{task}.yaml")
    cfg = validate_config(raw)
    arms = []
    if peer_python:
        path = tmp / f"{task}.pt"
        torch.save({"x_train": x_train, "x_test": x_test, **extra}, path)
        arms.append(PeerArm(peer_python, task, path, lr, seed, 4, threads))
    torch.manual_seed(seed)
    paper = ArtifactRemoval(UNet(1, **UNET), init="pinv")
    arms.append(Arm("selfrecon EI", paper, physics, loss, x_train, x_test, lr, seed))
    torch.manual_seed(seed)
    default = build_model(cfg, 1)
    arms.append(Arm("selfrecon default", default, physics, loss, x_train, x_test, lr, seed))
    return arms


def run_task(task, args, tmp: Path) -> list[dict]:
    x_train, x_test = _data(task, args.train, args.test)
    arms = _arms(task, x_train, x_test, args.lr, args.seed, args.peer_python, args.threads, tmp)
    gen = torch.Generator().manual_seed(args.seed)
    curves, first_eval = {}, {}
    for a in arms:  # step 0; its time is what reconstructing the test images costs the arm
        t0 = time.perf_counter()
        curves[a.name] = [(0.0, a.eval())]
        first_eval[a.name] = time.perf_counter() - t0
    elapsed = {a.name: 0.0 for a in arms}
    for done in range(0, args.steps, args.chunk):
        k = min(args.chunk, args.steps - done)
        batches = [torch.randint(0, len(x_train), (4,), generator=gen) for _ in range(k)]
        for a in arms:  # alternate: every arm trains on the same batches, one after the other
            elapsed[a.name] += a.train(batches)
            curves[a.name].append((elapsed[a.name], a.eval()))
        print(
            f"{task} step {done + k}: "
            + ", ".join(f"{n} {c[-1][1]:.2f} dB" for n, c in curves.items()),
            flush=True,
        )
    for a in arms:
        if isinstance(a, PeerArm):
            PEER_INFO.update(a.info)
            a.close()
    target = curves["deepinv EI"][-1][1] if "deepinv EI" in curves else None
    rows = []
    for name, c in curves.items():
        reach = next((t for t, p in c if target is not None and p >= target), None)
        rows.append(
            {
                "task": task,
                "arm": name,
                "ms_per_step": 1000 * elapsed[name] / args.steps,
                "psnr_start": c[0][1],
                "psnr_final": c[-1][1],
                "seconds_to_peer_final": reach,
                "test_recon_s": first_eval[name],
                "curve": c,
            }
        )
    peer_time = next((r["seconds_to_peer_final"] for r in rows if r["arm"] == "deepinv EI"), None)
    for r in rows:
        t = r["seconds_to_peer_final"]
        r["ratio_to_peer"] = (t / peer_time) if (t is not None and peer_time) else None
    return rows


def _write(rows, out: Path, args, peer_info) -> None:
    from selfrecon.training.plots import _plt, _save

    out.mkdir(parents=True, exist_ok=True)
    keys = ["task", "arm", "ms_per_step", "psnr_start", "psnr_final", "seconds_to_peer_final",
            "ratio_to_peer", "test_recon_s"]  # fmt: skip
    with open(out / "peer.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows({k: r[k] for k in keys} for r in rows)
    plt = _plt()
    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for r in (r for r in rows if r["task"] == task):
            ts, ps = zip(*r["curve"], strict=True)
            ax.plot(ts, ps, marker=".", label=r["arm"])
        ax.set_xlabel("training time (s)")
        ax.set_ylabel("test PSNR (dB)")
        ax.set_title(task)
        ax.legend(fontsize=8)
    _save(fig, out / "peer.png")

    def fmt(v, d=2):
        return "–" if v is None else f"{v:.{d}f}"

    lines = [
        "## peer: time to quality beside deepinv",
        "",
        f"Command: `python benchmarks/peer.py --steps {args.steps} --chunk {args.chunk}` on "
        f"{platform.machine()} with {args.threads} threads; peer: deepinv "
        f"{peer_info.get('version', '–')} (torch {peer_info.get('torch', '–')}), selfrecon with "
        f"torch {torch.__version__}. Same UNet (width 16, depth 3), same batches, Adam lr "
        f"{args.lr:g}, arms alternating every {args.chunk} steps; time is training only. "
        f"A time of 0 to the peer's final PSNR means the arm starts above it: its classical "
        f"input (biharmonic inpainting, TV) already is; what that input costs at inference is "
        f"the last column (the {args.test} test images, untrained network included).",
        "",
        "| task | arm | ms/step | PSNR start | PSNR final | s to peer's final PSNR | vs peer "
        "| s to reconstruct the test images |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['arm']} | {fmt(r['ms_per_step'], 0)} | {fmt(r['psnr_start'])} | "
            f"{fmt(r['psnr_final'])} | {fmt(r['seconds_to_peer_final'], 1)} | "
            f"{fmt(r['ratio_to_peer'])} | {fmt(r['test_recon_s'], 1)} |"
        )
    lines += ["", f"![peer]({out.name}/peer.png)", ""]
    (out / "peer.md").write_text("\n".join(lines))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=os.environ.get("SELFRECON_PEER_PYTHON"))
    p.add_argument("--tasks", nargs="+", default=["inpainting", "ct"])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--train", type=int, default=128)
    p.add_argument("--test", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "results"))
    args = p.parse_args()
    if not args.peer_python or not Path(args.peer_python).exists():
        print("no deepinv environment (--peer-python or SELFRECON_PEER_PYTHON); skipped")
        return 0
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            rows += run_task(task, args, Path(tmp))
    info = PEER_INFO
    _write(rows, Path(args.out), args, info)
    for r in rows:
        print(
            f"{r['task']:11s} {r['arm']:18s} {r['ms_per_step']:6.0f} ms/step  "
            f"PSNR {r['psnr_start']:.2f} → {r['psnr_final']:.2f} dB  "
            f"to peer's final: {r['seconds_to_peer_final']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
