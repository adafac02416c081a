"""The speed defaults of the Trainer (channels-last model, fused Adam, one host sync per step)
change nothing but float rounding: one Trainer step equals a hand-written step."""

import copy

import torch
from _training_toys import DictSet, inpainting, small_model, smooth_images

from selfrecon.groups import Shift
from selfrecon.losses import EILoss, MCLoss, Step
from selfrecon.training import Trainer


def test_trainer_step_matches_plain_adam_step(tmp_path):
    physics = inpainting(size=16)
    data = DictSet(smooth_images(8, 16), physics, seed=1)
    # no batch norm: a conv bias before BN has a (numerically) zero gradient, which Adam's first
    # step turns into ±lr from rounding noise, so parameters could not be compared
    model = small_model(norm="none")
    reference = copy.deepcopy(model)
    loss = MCLoss() + EILoss(Shift())
    cfg = dict(
        batch_size=8,
        lr=1e-2,
        progress="none",
        plot_every=0,
        device="cpu",
        check_identifiability=False,
    )
    trainer = Trainer(model, loss, physics, data, config=cfg, run_dir=tmp_path)
    assert trainer.optimizer.defaults.get("fused") is True
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)

    batch = {"y": data.y, "x": data.x}
    gen = torch.Generator().manual_seed(0)
    gen.set_state(trainer.generator.get_state())
    values = trainer._train_step(batch)

    opt = torch.optim.Adam(reference.parameters(), lr=1e-2, foreach=False)  # for-loop Adam
    terms = loss(Step(data.y, physics, reference, gen))
    total = sum(terms.values())
    total.backward()
    opt.step()
    assert abs(values["total"] - float(total.detach())) < 1e-5
    assert set(values) == {"mc", "ei", "total"}
    for p, q in zip(trainer.model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=1e-5)
    # a wrong step would be visible: the update is much larger than the tolerance
    moved = max(
        float((p.detach() - q.detach()).abs().max())
        for p, q in zip(
            trainer.model.parameters(), small_model(norm="none").parameters(), strict=True
        )
    )
    assert moved > 1e-3
