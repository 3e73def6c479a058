"""hpo.rank_by: schedulers rank and searchers learn a trial's best epoch so far (best) or its latest (last)."""

from __future__ import annotations

import pytest

from fakes import FakeExecutor
from hydra_hpo.build import build_tuner
from hydra_hpo.errors import SettingsError
from hydra_hpo.journal import Journal, JournalError
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import build_searcher
from hydra_hpo.settings import HPOSettings
from hydra_hpo.simulate import simulate
from hydra_hpo.space import Categorical, Float, SearchSpace
from hydra_hpo.table import Table
from hydra_hpo.trial import COMPLETED
from hydra_hpo.tuner import Tuner

# id 0 dips to 0.1 at epoch 1 and sits at 0.5 by the first rung (epoch 2); id 1 is a flat 0.3
SPACE = SearchSpace([Categorical("id", (0, 1))])
TABLE = Table([{"id": 0}, {"id": 1}],
              [[0.1, 0.5, 0.5, 0.5], [0.3, 0.3, 0.3, 0.3]],
              [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
ASHA = {"searcher": "grid", "scheduler": "asha", "type": "promotion", "r_min": 2, "eta": 2, "n_trials": 2}


def promoted(rank_by: str) -> list[int]:
    """The ids of the trials that trained past the first rung."""
    outcome = simulate({**ASHA, "rank_by": rank_by}, SPACE, TABLE, n_workers=1, seed=0)
    return sorted(record.config["id"] for record in outcome.trials.values() if len(record.curve) > 2)


def test_best_promotes_the_trial_whose_best_epoch_ranks_first_last_the_latest():
    assert promoted("best") == [0]  # 0.1 (epoch 1) beats 0.3
    assert promoted("auto") == [0]  # the default
    assert promoted("last") == [1]  # 0.3 beats 0.5 (epoch 2)


@pytest.mark.parametrize("mode, curve, expected", [
    ("min", [0.4, 0.2, 0.6], 0.2),
    ("max", [0.4, 0.9, 0.6], -0.9),  # an accuracy: the searcher minimizes its negative
])
def test_the_searcher_learns_the_best_epoch_and_the_incumbent_is_unchanged(mode, curve, expected):
    space = SearchSpace({"x": Float("x", 0.0, 1.0)})
    searcher = build_searcher("random", space, seed=3)
    scheduler = build_scheduler("fifo", searcher, 2, 3)
    executor = FakeExecutor(1, lambda job: (COMPLETED, curve[-1], 1.0, curve))
    outcome = Tuner(scheduler, executor, searcher=searcher, mode=mode, rank_by="best").run()
    assert [by_resource[3] for by_resource in searcher.results.values()] == [expected, expected]
    assert outcome.best.value == -expected if mode == "max" else expected
    assert all(record.value == curve[-1] for record in outcome.trials.values())  # the trials keep their last value

    searcher = build_searcher("random", space, seed=3)
    Tuner(build_scheduler("fifo", searcher, 2, 3), FakeExecutor(1, lambda job: (COMPLETED, curve[-1], 1.0, curve)),
          searcher=searcher, mode=mode, rank_by="last").run()
    last = curve[-1] if mode == "min" else -curve[-1]
    assert [by_resource[3] for by_resource in searcher.results.values()] == [last, last]


def test_auto_is_best_but_last_for_pbt_and_several_objectives():
    assert HPOSettings.from_mapping({}).rank_value == "best"
    assert HPOSettings.from_mapping({"scheduler": "asha"}).rank_value == "best"
    assert HPOSettings.from_mapping({"scheduler": "pbt"}).rank_value == "last"
    assert HPOSettings.from_mapping({"objectives": {"a": "min", "b": "min"}}).rank_value == "last"
    assert HPOSettings.from_mapping({"rank_by": "last"}).rank_value == "last"


@pytest.mark.parametrize("mapping, message", [
    ({"rank_by": "median"}, r"^hpo\.rank_by='median': must be one of auto, best, last"),
    ({"rank_by": "best", "scheduler": "pbt"}, r"^hpo\.rank_by='best': population based training ranks members by "
                                               r"their latest epoch"),
    ({"rank_by": "best", "constraints": {"n_params": {"max": 10}}}, r"^hpo\.rank_by='best': with hpo\.objectives"),
])
def test_a_bad_rank_by_is_one_line_naming_key_and_value(mapping, message):
    with pytest.raises(SettingsError, match=message) as info:
        HPOSettings.from_mapping(mapping)
    assert "\n" not in str(info.value)


def test_the_fingerprint_holds_best_so_a_journal_of_the_other_rule_does_not_resume():
    assert HPOSettings.from_mapping({}).fingerprint()["rank_by"] == "best"
    # a journal written before hpo.rank_by (last epoch) has no such key: rank_by=last resumes it
    assert "rank_by" not in HPOSettings.from_mapping({"rank_by": "last"}).fingerprint()


def test_a_journal_written_before_rank_by_resumes_only_with_last(tmp_path):
    hpo = {"searcher": "random", "scheduler": "asha", "r_min": 1, "eta": 2, "n_trials": 4}
    before = HPOSettings.from_mapping({**hpo, "rank_by": "last"}).fingerprint()  # as journals before rank_by
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("sweep_started", fingerprint=before)
    journal.close()
    log = ResumeLog(journal.read())
    with pytest.raises(JournalError, match=r"ranked every result by its last epoch .* Resume it with "
                                           r"hpo\.rank_by=last\.$"):
        log.check_fingerprint(HPOSettings.from_mapping(hpo).fingerprint())
    log.check_fingerprint(HPOSettings.from_mapping({**hpo, "rank_by": "last"}).fingerprint())


ASHA_OPTIONS = {"scheduler": "asha", "r_min": 1, "eta": 2}
PBT_OPTIONS = {"scheduler": "pbt", "population_size": 2, "perturbation_interval": 2}


@pytest.mark.parametrize("mapping, expected", [
    (ASHA_OPTIONS, "best"), (PBT_OPTIONS, "last"), ({**ASHA_OPTIONS, "rank_by": "last"}, "last"),
])
def test_build_tuner_hands_the_resolved_rule_to_the_tuner(mapping, expected):
    space = SearchSpace({"model.lr": Float("model.lr", 0.001, 0.1)})
    tuner = build_tuner(HPOSettings.from_mapping(mapping), space, 4, FakeExecutor(1))
    assert tuner.rank_by == expected
