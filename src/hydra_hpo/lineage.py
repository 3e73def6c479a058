"""Lineage of population based training: each member's hyperparameters per segment, where it copied from,
the path (across copies) that led to the best result, and that path as a rerunnable schedule."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from hydra_hpo.records import Segment, TrialRecord
from hydra_hpo.trial import COMPLETED


@dataclass(frozen=True)
class PathStep:
    """Epochs ``start`` to ``end`` of a training history, trained by ``trial_id`` with ``config``."""

    start: int
    end: int
    trial_id: int
    config: dict[str, Any]


def has_lineage(trials: Mapping[int, TrialRecord]) -> bool:
    """Whether any trial changed its config or copied another trial's checkpoint (population based training)."""
    return any(s.source_trial is not None or (s.config is not None and s.config != r.config)
               for r in trials.values() for s in r.segments)


def changing_keys(trials: Mapping[int, TrialRecord]) -> list[str]:
    """The config keys that took more than one value within some trial's segments."""
    keys: list[str] = []
    for record in trials.values():
        for s in record.segments:
            for key, value in (s.config or {}).items():
                if value != record.config.get(key) and key not in keys:
                    keys.append(key)
    return keys


def lineage_text(record: TrialRecord, keys: Sequence[str]) -> str:
    """One line: ``0-2: lr=0.01 momentum=0.9 | 2-4 from trial 3: ...`` for the trial's completed segments."""
    parts = []
    for s in record.segments:
        if s.status != COMPLETED:
            continue
        config = s.config if s.config is not None else record.config
        source = f" from trial {s.source_trial}" if s.source_trial is not None else ""
        values = " ".join(f"{k.rsplit('.', 1)[-1]}={config[k]:.4g}" if isinstance(config.get(k), float)
                          else f"{k.rsplit('.', 1)[-1]}={config.get(k)}" for k in keys)
        parts.append(f"{s.previous_resource}-{s.resource}{source}: {values}")
    return " | ".join(parts)


def _completed(record: TrialRecord) -> list[Segment]:
    return [s for s in record.segments if s.status == COMPLETED]


def history(trials: Mapping[int, TrialRecord], trial_id: int, epochs: int) -> list[PathStep]:
    """The training history behind ``trial_id``'s checkpoint after ``epochs`` epochs, first epoch first:
    its own segments, and before a copy those of the trial it copied (as that trial was when copied)."""
    steps: list[PathStep] = []
    record = trials[trial_id]
    segments = _completed(record)
    index = max((i for i, s in enumerate(segments) if s.previous_resource < epochs <= s.resource), default=None)
    end = epochs
    while index is not None:
        s = segments[index]
        steps.append(PathStep(s.previous_resource, end, record.trial_id,
                              dict(s.config if s.config is not None else record.config)))
        end = s.previous_resource
        if end <= 0:
            break
        if s.source_trial is not None:  # the donor's segment that ended at ``end`` before this one started
            record = trials[s.source_trial]
            candidates = _completed(record)
            before = [i for i, d in enumerate(candidates) if d.resource == end and d.finished <= s.started]
            segments, index = candidates, (before[-1] if before else None)
        else:
            index = max((i for i in range(index) if segments[i].resource == end), default=None)
    return list(reversed(steps))


def schedule(steps: Sequence[PathStep], keys: Sequence[str]) -> list[dict[str, Any]]:
    """``trial.schedule`` entries (``start_epoch``, ``end_epoch`` and the optimizer values by their param_group
    names) for the history ``steps``; consecutive steps with the same values merge."""
    entries: list[dict[str, Any]] = []
    for step in steps:
        values = {key.rsplit(".", 1)[-1]: step.config[key] for key in keys}
        if entries and all(entries[-1][k] == v for k, v in values.items()):
            entries[-1]["end_epoch"] = step.end
            continue
        entries.append({"start_epoch": step.start, "end_epoch": step.end, **values})
    return entries


def plot_lineage(trials: Mapping[int, TrialRecord], keys: Sequence[str], path: str | os.PathLike,
                 best: tuple[int, int] | None = None) -> None:
    """Each mutable key's value against epochs, one colour per member (dotted: a copy from another member);
    ``best`` (trial id, epochs): the history that led to the best result, drawn thick and black."""
    from hydra_hpo.plots import _figure

    plt = _figure()
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.6 * len(keys)), sharex=True, squeeze=False)
    colours = {t: f"C{i % 10}" for i, t in enumerate(sorted(trials))}
    for ax, key in zip(axes[:, 0], keys):
        for trial_id in sorted(trials):
            record = trials[trial_id]
            for s in _completed(record):
                value = (s.config if s.config is not None else record.config).get(key)
                if value is None:
                    continue
                ax.plot([s.previous_resource, s.resource], [value, value], color=colours[trial_id], lw=1.2,
                        alpha=0.8, label=f"trial {trial_id}" if s is _completed(record)[0] else None)
                if s.source_trial is not None and s.source_trial in trials:
                    donor = history(trials, s.source_trial, s.previous_resource)
                    if donor:
                        ax.plot([s.previous_resource] * 2, [donor[-1].config.get(key), value], ":",
                                color=colours[trial_id], lw=1)
        if best is not None:
            steps = history(trials, *best)
            for step in steps:
                ax.plot([step.start, step.end], [step.config[key]] * 2, color="black", lw=3, alpha=0.6)
            for a, b in zip(steps, steps[1:]):
                ax.plot([b.start] * 2, [a.config[key], b.config[key]], color="black", lw=1.5, alpha=0.6)
        if all(isinstance(v, (int, float)) and v > 0 for r in trials.values() for s in r.segments
               for v in [(s.config or r.config).get(key)] if v is not None) and key.endswith("lr"):
            ax.set_yscale("log")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title("PBT lineage (dotted: copied from another member; black: history of the best result)",
                         fontsize=9)
    axes[-1, 0].set_xlabel("epoch")
    if len(trials) <= 12:
        axes[0, 0].legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
