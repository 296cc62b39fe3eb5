"""The task shared by the field-to-field trainers (downscaler, inpainter).

Each epoch draws random high-resolution patches of the training fields; a
batch's loss is the subclass's :meth:`FieldTask.batch_loss` of (patches, a
generator seeded by (seed, epoch)); Adam with a cosine schedule.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..zoo import Model
from ._common import card_frame, freeze, init_zscore, model_id, resolved_config, start_model
from ._content import Content
from ._critic import Critic
from ._loop import Task
from ._pairs import make_blocks, patch_index, take_patches
from ._source import FieldSource

__all__ = ["FieldTask"]


class FieldTask(Task):
    """Draw patches, train ``net`` on ``batch_loss``, write the card.

    Subclasses set ``task``, ``kind_arg`` (the name of their loss argument)
    and ``network`` (the nn class) and implement :meth:`batch_loss`,
    :meth:`distance` and :meth:`card_entries`; ``args`` are the network's.
    """

    task: str
    kind_arg: str
    network: type

    def __init__(self, s, src: FieldSource, args: dict) -> None:
        import torch

        self.s, self.src, self.args = s, src, args
        sch = s.schedule
        self.epochs, self.seed, self.patch = sch.epochs, sch.seed, s.data.patch_size
        self.batch_size, self.samples = sch.batch_size, sch.samples_per_epoch
        self.steps_per_epoch = max(1, self.samples // self.batch_size)
        self.kind = getattr(s.loss, self.kind_arg)
        self.content = Content(s.loss, (self.kind_arg, self.kind), src, self.distance)
        self.noise = int(args.get("noise", 0))
        # a deterministic init may start a sampling model: its noise paths begin at zero
        same = {k: x for k, x in args.items() if k not in ("noise", "noise_steps")}
        self.start = start_model(sch.init, self.task, self.network, same, src)
        start = self.start.card.args if self.start is not None else {}
        mine = (self.noise, args.get("noise_steps"))
        if start.get("noise", 0) and (start["noise"], start.get("noise_steps")) != mine:
            raise InputError(
                f"init={self.start.name!r} samples with noise={start['noise']} maps "
                f"(noise_steps={start.get('noise_steps')}); these arguments give "
                f"noise={mine[0]} (noise_steps={mine[1]}). Pass its noise settings, or a "
                "deterministic init."
            )
        torch.manual_seed(sch.seed)
        self.net = self.network(**args)
        if self.start is None:
            init_zscore(self.net, src, sch.seed)
        else:
            missing = self.net.load_state_dict(self.start.module.state_dict(), strict=False)
            assert not missing.unexpected_keys, missing  # the args check above rules them out
            assert all(k.startswith("noise_in.") for k in missing.missing_keys), missing
        self.samples_per_input = int(s.ensemble.ensemble_samples) if self.noise else 1
        if not float(s.ensemble.energy_power) <= 1.0:
            raise InputError(
                f"energy_power must be in (0, 1] (D**p is an energy score only then: 1 takes "
                f"the content loss as it is, 0.5 a squared distance's norm); got "
                f"{s.ensemble.energy_power!r}."
            )
        self.std = self.net.std.view(1, -1, 1, 1)
        self.mean = self.net.mean.view(1, -1, 1, 1)
        adv = s.adversarial
        self.gan_weight = float(adv.adversarial_weight)
        self.critic = Critic(src.n_channels, sch.lr) if adv.adversarial else None
        self.blocks, _ = make_blocks(
            n_series=src.n_series,
            n_time=src.n_time,
            block_length=min(src.n_time, 32),
            max_lag=0,
            val_every=0,
        )

    @property
    def config(self) -> dict:
        """The settings a resumed run must repeat."""
        return resolved_config(
            self.s,
            self.src,
            init=model_id(self.start),
            **self.content.resolved(),
            **self.resolved(),
        )

    def resolved(self) -> dict:
        """Task settings as run, where they differ from the given ones."""
        return {}

    def optimizer(self, total_steps: int):
        """Adam on the trainable parameters, cosine decay over ``total_steps``."""
        import torch

        lr = self.s.schedule.lr
        named = [(n, p) for n, p in self.net.named_parameters() if p.requires_grad]
        groups = [{"params": [p for n, p in named if not n.startswith("noise_in.")], "lr": lr}]
        noise = [p for n, p in named if n.startswith("noise_in.")]
        if noise:  # the noise paths learn faster (see Ensemble.noise_lr_scale)
            groups.append({"params": noise, "lr": lr * float(self.s.ensemble.noise_lr_scale)})
        opt = torch.optim.Adam(groups, lr=lr)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)

    def batches(self, epoch: int, rng: np.random.Generator):
        """``samples_per_epoch`` random patches, then batches of them in turn."""
        import torch

        src, patch = self.src, self.patch
        order = rng.permutation(len(self.blocks))
        per = max(1, math.ceil(self.samples / len(self.blocks)))
        xs = []
        for _, fields in src.iter_blocks([self.blocks[i] for i in order]):
            t = rng.integers(0, fields.shape[0], size=per)
            r, c = patch_index(rng, per, nlat=src.nlat, nlon=src.nlon, patch=patch, wrap=src.wrap)
            xs.append(take_patches(fields, t, r, c, patch))
            if sum(len(x) for x in xs) >= self.samples:
                break
        data = torch.from_numpy(np.concatenate(xs)[rng.permutation(sum(len(x) for x in xs))])
        step_rng = np.random.default_rng([self.seed, 3, epoch])
        for s in range(self.steps_per_epoch):
            yield data[(s * self.batch_size) % len(data) :][: self.batch_size], step_rng

    def to(self, device) -> None:
        """Move the network, the content loss's encoders and the discriminator to ``device``."""
        self.net.to(device)
        self.std = self.net.std.view(1, -1, 1, 1)
        self.mean = self.net.mean.view(1, -1, 1, 1)
        self.content.to(device)
        if self.critic is not None:
            self.critic.net.to(device)

    def loss(self, batch):
        """The subclass's loss of one batch of patches."""
        truth, rng = batch
        return self.batch_loss(truth, rng), len(truth), {}

    def gan_loss(self, truth, pred):
        """The weighted generator GAN loss after one discriminator step, on z-scored fields.

        0 for a model trained without a discriminator (``adversarial=False``).
        """
        if self.critic is None:
            return 0.0
        z = lambda x: (x - self.mean) / self.std  # noqa: E731
        return self.gan_weight * self.critic.step(z(truth), z(pred))

    def extra_state(self) -> dict | None:
        """The discriminator and its optimizer, if any."""
        return self.critic.state() if self.critic is not None else None

    def epoch_stats(self) -> dict:
        """The discriminator's epoch statistics, if any."""
        return self.critic.epoch_stats() if self.critic is not None else {}

    def sampled(self, rng: np.random.Generator, x, *more):
        """``x`` and ``more`` repeated ``samples_per_input`` times, and noise for the network.

        The noise (standard normal, of the network's ``noise_shape`` for the repeated ``x``)
        comes from the step's ``rng``, so a resumed run draws it again exactly.
        """
        import torch

        k = self.samples_per_input
        xs = [t.repeat(k, 1, 1, 1) for t in (x, *more)]
        shape = self.net.noise_shape(xs[0].shape[0], *xs[0].shape[2:])
        noise = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32)).to(x.device)
        return (*xs, noise)

    def content_loss(self, pred, truth, *extra):
        """The content loss of ``pred`` against ``truth`` (``extra``: the inpainter's mask).

        For a sampling model ``pred`` stacks ``samples_per_input`` samples of every input
        (as :meth:`sampled` repeats them) and, with ``ensemble_content="energy"``, the loss
        is the energy score ``mean_i D(x_i, y) - mean_{i != j} D(x_i, x_j) / 2``; with
        ``energy_power`` p < 1, of ``D**p``, ``D`` taken per input and the score averaged.
        """
        k, e = self.samples_per_input, self.s.ensemble
        if k == 1 or e.ensemble_content == "each":
            return self.content(pred, truth, self.mse(pred, truth, *extra), *extra)
        power = float(e.energy_power)

        def score(a, b):
            if power == 1.0:  # the batch's content loss as it is
                return self.content(a, b, self.mse(a, b, *extra), *extra)
            d = self.content(a, b, self.mse(a, b, *extra, per_input=True), *extra, per_input=True)
            # + a tiny constant: D**p has an infinite slope at 0 (two samples start out equal)
            return (d + 1e-12).pow(power).mean()

        loss = score(pred, truth)
        n = len(pred) // k
        # every ordered pair (i, j) of samples of one input: the stack rolled by s inputs' worth
        spread = 0.0
        for s in range(1, k):
            spread = spread + score(pred, pred.roll(s * n, dims=0).detach())
        spread = spread / (k - 1)
        # D(x_i, x_j) with x_j held fixed carries half the gradient of the symmetric D over the
        # ordered pairs; the second term doubles the gradient and adds nothing to the value
        return loss - 0.5 * spread - 0.5 * (spread - spread.detach())

    def mse(self, pred, truth, *extra, per_input: bool = False):
        """Mean squared z-scored error of ``pred`` (over the inpainter's hole: ``extra``).

        ``per_input``: one value per input (B,) instead of the batch's.
        """
        raise NotImplementedError

    def ensemble_loss(self, samples, truth):
        """``crps_weight`` x the fair CRPS of ``samples`` (K, B, C, H, W) on z-scored fields."""
        z = samples / self.std
        zt = truth / self.std
        k = z.shape[0]
        skill = (z - zt.unsqueeze(0)).abs().mean()
        spread = sum((z[i] - z[j]).abs().mean() for i in range(k) for j in range(i + 1, k)) / (
            k * (k - 1) / 2
        )
        return float(self.s.ensemble.crps_weight) * (skill - 0.5 * spread)

    def ensemble_card(self) -> dict | None:
        """The card's ``training.ensemble`` (None for a deterministic model)."""
        if not self.noise:
            return None
        e = self.s.ensemble
        p = float(e.energy_power)
        d = "D" if p == 1.0 else f"D**{p:g}"
        return {
            "noise_maps": self.noise,
            "samples_per_input": self.samples_per_input,
            "crps_weight": float(e.crps_weight),
            "content": (
                f"energy score of the content loss D: mean_i {d}(x_i, y) - "
                f"mean_(i != j) {d}(x_i, x_j) / 2" + ("" if p == 1.0 else ", D per input")
                if e.ensemble_content == "energy"
                else "mean_i D(x_i, y): every sample on its own"
            ),
            "noise_lr": float(self.s.schedule.lr) * float(e.noise_lr_scale),
            "crps": "fair CRPS of the samples on z-scored fields: mean_i |x_i - y| - "
            "mean_(i != j) |x_i - x_j| / 2 per point, averaged",
        }

    def record(self, epoch, sums, seen, seconds, lr) -> dict:
        """Mean loss and speed of the epoch."""
        rec = {"epoch": epoch + 1, "loss": sums["loss"] / max(seen, 1)}
        return {**rec, "samples_per_second": seen / seconds, **self.epoch_stats()}

    def finish(self, history: list, seconds: float, first: int) -> Model:
        """The trained model with its card."""
        freeze(self.net)
        entries = self.card_entries()
        training = {
            self.kind_arg: self.kind,
            **entries.pop("training"),
            **self.content.card(),
            "init": model_id(self.start),
            "ensemble": self.ensemble_card(),
            "adversarial": self.critic.card(self.gan_weight) if self.critic is not None else None,
            "samples_per_epoch": self.samples,
            "train_seconds": round(seconds, 1),
            "history": history,
        }
        card = card_frame(
            self.s,
            self.src,
            architecture=self.network.__name__,
            args=self.args,
            **entries,
            patch_size=self.patch,
            normalisation={
                "method": "per-variable z-score (buffers mean/std in the weights)",
                "mean": self.net.mean.tolist(),
                "std": self.net.std.tolist(),
            },
            training=training,
        )
        return Model(card=card, module=self.net)
