"""The analogue metric: an encoder's features mapped to its state's predicted successor."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SuccessorMetric"]


class SuccessorMetric(nn.Module):
    """A linear map from an encoder's flattened feature grid to a predicted successor.

    The output is the leading principal components of the normalised fields
    ``lead`` later (as ``xatmodist.train.fit_analog_metric`` fits them, by
    ridge regression), scaled so that the mean squared difference of two
    outputs is the mean squared difference of the two predicted successor
    fields per grid value, in those components.  Analogues are then the states
    whose successors are predicted to be alike.

    Parameters
    ----------
    in_features : int
        Length of the encoder's flattened feature grid on the model's grid.
    components : int
        Principal components of the predicted successor.
    """

    def __init__(self, in_features: int, components: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_features))
        self.proj = nn.Linear(in_features, components, bias=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(N, in_features) encoder features -> (N, components)."""
        return self.proj(f - self.mean)
