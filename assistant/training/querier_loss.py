"""The querier-aware term: replies to the same person, on the same kind of query, sound alike.

Contract of ``QuerierContrast(hidden, n_clusters)`` (as in the paper's released code):
- ``pool(states, reply_mask)`` mean-pools the last layer's states over the reply's tokens.
- ``forward(pooled, clusters, queriers)`` projects each pooled state with its query cluster's
  two small heads (two heads = two views), L2-normalises, and scores each view against the
  per-(cluster, querier) prototypes of its own cluster in the memory bank with InfoNCE at
  temperature 0.1, the true querier's prototype being the positive. Restricting the contrast to
  one cluster makes it about *who* asks rather than *what* is asked. Rows whose cluster holds
  fewer than two queriers' prototypes add nothing. Returns the mean loss (0 when no row counts).
- After scoring, the bank takes the batch in: each prototype is an exponential moving average
  (``momentum``) of its querier's recent, detached embeddings, so it needs no gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TEMPERATURE = 0.1
PROJECTION = 128
MOMENTUM = 0.9


class QuerierContrast(nn.Module):
    def __init__(self, hidden: int, n_clusters: int, projection: int = PROJECTION,
                 temperature: float = TEMPERATURE, momentum: float = MOMENTUM):
        super().__init__()
        self.views = nn.ModuleList(
            nn.ModuleList(nn.Linear(hidden, projection) for _ in range(2)) for _ in range(max(n_clusters, 1)))
        self.temperature, self.momentum = temperature, momentum
        self.bank: dict[tuple[int, str], torch.Tensor] = {}

    @staticmethod
    def pool(states: torch.Tensor, reply_mask: torch.Tensor) -> torch.Tensor:
        weights = reply_mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def _cluster(self, cluster: int) -> int:
        return min(max(int(cluster), 0), len(self.views) - 1)

    def forward(self, pooled: torch.Tensor, clusters: list[int], queriers: list[str]) -> torch.Tensor:
        losses, seen = [], []
        for row, (cluster, querier) in enumerate(zip(clusters, queriers)):
            cluster = self._cluster(cluster)
            views = [F.normalize(head(pooled[row]), dim=-1) for head in self.views[cluster]]
            seen.append((cluster, querier, torch.stack(views).mean(0).detach()))
            names = sorted(q for c, q in self.bank if c == cluster)
            if len(names) < 2 or querier not in names:
                continue
            prototypes = F.normalize(torch.stack([self.bank[(cluster, q)] for q in names]), dim=-1)
            target = torch.tensor(names.index(querier))
            for view in views:
                losses.append(F.cross_entropy((view @ prototypes.T / self.temperature).unsqueeze(0), target.unsqueeze(0)))
        self._remember(seen)
        return torch.stack(losses).mean() if losses else pooled.new_zeros(())

    def _remember(self, seen) -> None:
        for cluster, querier, vector in seen:
            old = self.bank.get((cluster, querier))
            self.bank[(cluster, querier)] = vector if old is None else self.momentum * old + (1 - self.momentum) * vector
