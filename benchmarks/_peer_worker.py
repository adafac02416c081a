"""The deepinv side of ``benchmarks/peer.py``; runs in deepinv's own environment.

Reads one JSON command per line on stdin and answers one JSON line on stdout:

* ``{"cmd": "init", "task": "inpainting"|"ct", "data": PATH, "seed": S, "lr": LR,
  "batch": B, "unet": {...}}`` — load the tensors ``PATH`` holds (``x_train``, ``x_test``, and
  ``mask`` for inpainting), build deepinv's physics, its ``ArtifactRemoval`` (A†y input) around
  selfrecon's UNet (loaded from its source file, so the network is the same) and deepinv's
  ``MCLoss`` + ``EILoss``;
* ``{"cmd": "train", "steps": K, "indices": [[...], ...]}`` — K Adam steps on the given batches,
  answers the seconds spent;
* ``{"cmd": "eval"}`` — mean test PSNR (dB, per image, images in [0, 1]);
* ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import deepinv as dinv
import torch


def _unet_class():
    src = Path(__file__).resolve().parents[1] / "src" / "selfrecon" / "models" / "unet.py"
    spec = importlib.util.spec_from_file_location("selfrecon_unet", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.UNet


class Backbone(torch.nn.Module):
    """deepinv calls ``backbone(x, sigma)``; selfrecon's UNet takes ``x``."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, sigma=None, **kwargs):
        return self.net(x)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.clamp(0, 1) - b).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(1.0 / mse)).mean())


class Peer:
    def __init__(self, task, data, seed, lr, batch, unet):
        torch.manual_seed(seed)
        d = torch.load(data, weights_only=True)
        self.x_train, self.x_test = d["x_train"], d["x_test"]
        n = self.x_train.shape[-1]
        if task == "inpainting":
            self.physics = dinv.physics.Inpainting(img_size=(1, n, n), mask=d["mask"])
            transform = dinv.transform.Shift()
            weight = 1.0
        else:
            self.physics = dinv.physics.Tomography(angles=d["views"], img_width=n)
            transform = dinv.transform.Rotate()
            weight = 100.0
        self.y_train = self.physics.A(self.x_train)
        self.y_test = self.physics.A(self.x_test)
        self.model = dinv.models.ArtifactRemoval(Backbone(_unet_class()(1, **unet)), mode="pinv")
        self.losses = [dinv.loss.MCLoss(), dinv.loss.EILoss(transform, weight=weight)]
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.batch = batch

    def train(self, indices):
        self.model.train()
        t0 = time.perf_counter()
        for idx in indices:
            y = self.y_train[idx]
            x_net = self.model(y, self.physics)
            loss = self.losses[0](y=y, x_net=x_net, physics=self.physics)
            loss = loss + self.losses[1](x_net=x_net, physics=self.physics, model=self.model)
            self.opt.zero_grad()
            loss.mean().backward()
            self.opt.step()
        return time.perf_counter() - t0

    @torch.no_grad()
    def eval(self):
        self.model.eval()
        out = torch.cat(
            [
                self.model(self.y_test[i : i + 8], self.physics)
                for i in range(0, len(self.y_test), 8)
            ]
        )
        return _psnr(out, self.x_test)


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    peer = None
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "init":
            peer = Peer(msg["task"], msg["data"], msg["seed"], msg["lr"], msg["batch"], msg["unet"])
            out = {"ok": True, "version": dinv.__version__, "torch": torch.__version__}
        elif msg["cmd"] == "train":
            out = {"seconds": peer.train([torch.tensor(i) for i in msg["indices"]])}
        elif msg["cmd"] == "eval":
            out = {"psnr": peer.eval()}
        else:
            break
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
