"""Hyperband (Li et al. 2018): successive-halving brackets of decreasing aggressiveness, in turn."""

from __future__ import annotations

from hydra_hpo.schedulers.successive_halving import BracketScheduler, bracket_table
from hydra_hpo.searchers.base import Searcher


def bracket_size(s: int, s_max: int, eta: int) -> int:
    """Configurations of bracket ``s``: ``ceil((s_max + 1) / (s + 1) * eta**s)``, in integers."""
    return -(-((s_max + 1) * eta**s) // (s + 1))


class HyperbandScheduler(BracketScheduler):
    """Hyperband: brackets ``s = s_max .. 0`` run one after the other, cycling until ``n_trials``
    configurations have started. Synchronous within a bracket (see :class:`Bracket`).

    Bracket ``s`` starts :func:`bracket_size` configurations on the top ``s + 1`` levels of
    ``rung_levels(r_min, r_max, eta)``. ``s_max = len(levels) - 1`` is the paper's
    ``floor(log_eta(r_max / r_min))`` when ``r_max / r_min`` is a power of ``eta``; otherwise ``r_max``
    is one more rung, as in successive halving, so bracket ``s_max`` is one successive-halving round.
    """

    def __init__(self, searcher: Searcher, n_trials: int, r_min: int, r_max: int, eta: int) -> None:
        super().__init__(searcher, n_trials, r_min, r_max, eta)
        self.s_max = len(self.levels) - 1

    def brackets(self) -> list[list[tuple[int, int]]]:
        """The ``(n_i, r_i)`` table of every bracket, most aggressive first, as the brackets run it
        when no job fails (the same shapes and culling rule)."""
        return [bracket_table(*self._bracket_shape(s), self.eta) for s in range(self.s_max, -1, -1)]

    def _bracket_shape(self, s: int) -> tuple[list[int], int]:
        return self.levels[self.s_max - s :], bracket_size(s, self.s_max, self.eta)

    def _next_bracket_shape(self) -> tuple[list[int], int]:
        return self._bracket_shape(self.s_max - self.n_brackets % (self.s_max + 1))
