"""The optional GAN term of the field trainers (downscaler, inpainter), as PhIRE."""

from __future__ import annotations

__all__ = ["Critic"]


class Critic:
    """The discriminator of ``adversarial=True``, its optimizer and running statistics."""

    WIDTH, DEPTH = 32, 3

    def __init__(self, channels: int, lr: float) -> None:
        import torch

        from ..nn import PatchDiscriminator

        self.net = PatchDiscriminator(channels, width=self.WIDTH, depth=self.DEPTH)
        self.lr = lr
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.5, 0.999))
        self._sums = [0.0, 0.0, 0.0, 0]

    def step(self, real, fake):
        """Update the discriminator on (real, fake.detach()); return the generator's loss."""
        import torch
        import torch.nn.functional as F

        bce = F.binary_cross_entropy_with_logits
        lr, lf = self.net(real), self.net(fake.detach())
        d_loss = bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))
        self.opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt.step()
        s = self._sums
        s[0] += float(d_loss.detach())
        s[1] += float(torch.sigmoid(lr.detach()).mean())
        s[2] += float(torch.sigmoid(lf.detach()).mean())
        s[3] += 1
        for p in self.net.parameters():
            p.requires_grad_(False)
        try:
            lg = self.net(fake)
            return bce(lg, torch.ones_like(lg))
        finally:
            for p in self.net.parameters():
                p.requires_grad_(True)

    def epoch_stats(self) -> dict:
        """Mean discriminator loss and D(real), D(fake) over the epoch; resets them."""
        d, r, f, n = self._sums
        self._sums = [0.0, 0.0, 0.0, 0]
        n = max(n, 1)
        return {"disc_loss": d / n, "disc_real": r / n, "disc_fake": f / n}

    def state(self) -> dict:
        """Objects to checkpoint."""
        return {"discriminator": self.net, "discriminator_optimizer": self.opt}

    def card(self, weight: float) -> dict:
        """The card's ``training.adversarial``."""
        return {
            "weight": weight,
            "discriminator": {
                "architecture": "PatchDiscriminator",
                "width": self.WIDTH,
                "depth": self.DEPTH,
            },
            "optimizer": f"Adam lr={self.lr:g}, betas=(0.5, 0.999)",
            "loss": "non-saturating GAN (binary cross-entropy on logits)",
        }
