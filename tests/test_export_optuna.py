"""python -m hydra_hpo.export_optuna: a real sweep and a simulated ASHA sweep, read back through
optuna-dashboard's HTTP API."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna  # the `test` extra installs optuna and optuna-dashboard: these tests are never skipped
import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from hydra_hpo.export_optuna import default_study_name, export, main, open_storage, read_sweep
from hydra_hpo.simulate import simulate
from hydra_hpo.space_structured import space_from_structured
from hydra_hpo.table import Table

sys.path.insert(0, str(Path(__file__).parent / "stub_app"))
import stub  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ASHA = {"searcher": "random", "scheduler": "asha", "type": "promotion", "n_trials": 12, "n_workers": 3,
        "r_min": 1, "r_max": 9, "eta": 3, "seed": 5}


def stub_sweep(sweep_dir: Path, monkeypatch) -> list[dict]:
    """A real sweep (the sweeper with a stub task): 5 trials, trial 1 fails, trial 3 diverges."""
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["stub.py", "-m", f"hydra.sweep.dir={sweep_dir}", "hpo.n_trials=5",
                                      "+behaviour.1=fail", "+behaviour.3=diverge", "+hpo.progress=off"])
    try:
        stub.main()
    finally:
        GlobalHydra.instance().clear()
    with open(sweep_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def simulated_sweep(output_dir: Path):
    table = Table.load(REPO / "benchmarks/tables/mlp_digits.jsonl")
    space = space_from_structured(OmegaConf.to_container(OmegaConf.load(REPO / "conf/search_space/mlp.yaml")))
    return simulate(ASHA, space, table, output_dir=output_dir), table, space


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def dashboard():
    """Start optuna-dashboard (its command line, as a user runs it) on a storage; yields its base URL."""
    processes = []

    def start(storage: str) -> str:
        port = free_port()
        command = [sys.executable, "-c", "from optuna_dashboard._cli import main; main()", storage,
                   "--host", "127.0.0.1", "--port", str(port), "--quiet"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # only turns a hang into a failure; the loop ends when the server answers
        while True:
            assert process.poll() is None, f"optuna-dashboard exited: {process.communicate()[0]}"
            try:
                get_json(base + "/api/meta")
                return base
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "optuna-dashboard did not answer within 120 s"
                time.sleep(0.1)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def studies_by_name(base: str) -> dict[str, dict]:
    summaries = get_json(base + "/api/studies")["study_summaries"]
    return {s["study_name"]: get_json(f"{base}/api/studies/{s['study_id']}") | {"summary": s} for s in summaries}


@pytest.mark.slow  # starts optuna-dashboard's server
def test_a_real_and_a_simulated_sweep_in_optuna_dashboard(tmp_path, monkeypatch, dashboard, capsys):
    rows = stub_sweep(tmp_path / "multirun" / "stub", monkeypatch)
    outcome, table, space = simulated_sweep(tmp_path / "multirun" / "sim")
    storage = str(tmp_path / "optuna.log")  # Optuna's journal file storage
    for name in ("stub", "sim"):
        main([str(tmp_path / "multirun" / name), "--storage", storage])
    out = capsys.readouterr().out
    assert "Exported 5 trials (3 complete, 2 fail) to study 'multirun/stub'" in out
    assert f"View it: optuna-dashboard {storage}" in out

    studies = studies_by_name(dashboard(storage))
    assert set(studies) == {"multirun/stub", "multirun/sim"}

    stub_study = studies["multirun/stub"]
    assert stub_study["summary"]["directions"] == ["minimize"]
    trials = {t["number"]: t for t in stub_study["trials"]}
    assert len(trials) == 5
    for row in rows:
        trial = trials[int(row["trial_id"])]
        attributes = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert attributes["trial_id"] == row["trial_id"] and attributes["status"] == row["status"]
        params = {p["name"]: p["param_external_value"] for p in trial["params"]}
        assert params["act"] == row["act"] and float(params["x"]) == pytest.approx(float(row["x"]))
        if row["status"] == "completed":
            assert trial["state"] == "Complete" and trial["values"] == [pytest.approx(float(row["value"]))]
            # the stub logs no curve: the value at its last epoch is the one intermediate value
            assert trial["intermediate_values"] == [{"step": 1, "value": pytest.approx(float(row["value"]))}]
        else:
            assert row["status"] in ("failed", "diverged") and trial["state"] == "Fail"
            assert "values" not in trial or not trial["values"]
    assert [trials[1]["state"], trials[3]["state"]] == ["Fail", "Fail"]

    sim_study = studies["multirun/sim"]
    trials = {t["number"]: t for t in sim_study["trials"]}
    assert len(trials) == len(outcome.trials) == ASHA["n_trials"]
    states = {"completed": "Complete", "stopped": "Pruned", "paused": "Pruned"}
    assert {r.status for r in outcome.trials.values()} >= {"completed"}
    for trial_id, record in outcome.trials.items():
        trial = trials[trial_id]
        assert trial["state"] == states[record.status], trial_id
        assert trial["values"] == [pytest.approx(record.value)]
        # the per-epoch curve is the table's row for this configuration, up to the epochs the trial trained
        row = table.lookup_index(record.config, space)
        expected = [{"step": e, "value": pytest.approx(table.val_error[row][e - 1])}
                    for e in range(1, record.resource + 1)]
        assert trial["intermediate_values"] == expected, trial_id
        params = {p["name"]: p for p in trial["params"]}
        assert set(params) == set(space.names)
        assert params["model.lr"]["distribution"]["type"] == "FloatDistribution"
        assert params["model.lr"]["distribution"]["log"] is True
        assert params["data.batch_size"]["distribution"]["type"] == "IntDistribution"
        assert params["model.activation"]["distribution"]["type"] == "CategoricalDistribution"
        assert params["model.activation"]["param_external_value"] == record.config["model.activation"]
    best = sim_study["best_trials"][0]
    completed = {t: r.value for t, r in outcome.trials.items() if r.status == "completed"}
    assert best["number"] == min(completed, key=completed.get)


def test_a_running_sweep_exports_what_it_has_and_a_second_export_replaces_it(tmp_path):
    simulated_sweep(tmp_path / "sim")
    journal = tmp_path / "sim" / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    # the sweep as it was when its first trial had finished two jobs (the rest not yet written)
    second = [i for i, line in enumerate(lines) if '"segment_finished"' in line and '"trial_id": 0,' in line][1]
    running = tmp_path / "running"
    running.mkdir()
    (running / "journal.jsonl").write_text("".join(lines[: second + 1]) + '{"event": "segment_sta')  # torn tail
    storage = str(tmp_path / "optuna.log")
    study = export(running, storage, study_name="live")
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.RUNNING and trial.value is None
    assert sorted(trial.intermediate_values) == list(range(1, max(trial.intermediate_values) + 1))
    assert max(trial.intermediate_values) > 1  # the promoted segment's epochs are in
    history = read_sweep(running)
    assert not history.finished and len(study.trials) == len(history.trials)

    journal_of_running = running / "journal.jsonl"
    journal_of_running.write_text("".join(lines))  # the sweep went on to its end: export again
    study = export(running, storage, study_name="live")
    assert [s.study_name for s in optuna.get_all_study_summaries(open_storage(storage))] == ["live"]
    assert len(study.trials) == ASHA["n_trials"]
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in study.trials)


def test_a_study_of_that_name_from_elsewhere_is_not_replaced(tmp_path, capsys):
    simulated_sweep(tmp_path / "sim")
    storage = str(tmp_path / "optuna.log")
    optuna.create_study(study_name="mine", storage=open_storage(storage))
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "sim"), "--storage", storage, "--study-name", "mine"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: study 'mine':") and err.count("\n") == 1
    assert optuna.load_study(study_name="mine", storage=open_storage(storage)).trials == []
    assert default_study_name(tmp_path / "sim") == f"{tmp_path.name}/sim"


def test_without_optuna_one_line_names_the_extra(tmp_path, monkeypatch, capsys):
    simulated_sweep(tmp_path / "sim")
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "sim"), "--storage", str(tmp_path / "optuna.log")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == ("Error: optuna is not installed: pip install 'hydra-hpo[dashboard]' "
                                       "(optuna and optuna-dashboard)\n")
    assert not (tmp_path / "optuna.log").exists()


def test_not_a_sweep_directory(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--storage", str(tmp_path / "optuna.log")])
    assert "holds no journal.jsonl" in capsys.readouterr().err


def trials_by_id(study) -> dict[int, tuple]:
    """Our trial id -> (state, value, intermediate values, params) of each trial in an Optuna study."""
    return {int(t.user_attrs["trial_id"]): (t.state, t.value, dict(t.intermediate_values), t.params)
            for t in study.trials}


def test_live_storage_of_a_simulated_asha_sweep_matches_its_export(tmp_path):
    from hydra_hpo.build import build_tuner
    from hydra_hpo.executors.simulator import SimulatedExecutor
    from hydra_hpo.export_optuna import LiveOptunaExport
    from hydra_hpo.journal import Journal
    from hydra_hpo.settings import HPOSettings

    table = Table.load(REPO / "benchmarks/tables/mlp_digits.jsonl")
    space = space_from_structured(OmegaConf.to_container(OmegaConf.load(REPO / "conf/search_space/mlp.yaml")))
    settings = HPOSettings.from_mapping(ASHA)
    storage = str(tmp_path / "optuna.log")
    live = LiveOptunaExport(storage, tmp_path / "sweep", space, "min", "validation_error", study_name="live")
    fingerprint = {**settings.fingerprint(), "search_space": space.to_structured(), "metric": "validation_error"}
    tuner = build_tuner(settings, space, 9, SimulatedExecutor(table, space, 3, metric="validation_error"),
                        journal=Journal(tmp_path / "sweep" / "journal.jsonl", durable=False),
                        fingerprint=fingerprint, callbacks=[live])
    outcome = tuner.run()
    exported = export(tmp_path / "sweep", storage, study_name="exported")
    live_trials, exported_trials = trials_by_id(live.study), trials_by_id(exported)
    assert len(live_trials) == len(outcome.trials) == ASHA["n_trials"]
    assert live_trials == exported_trials
    assert {state.name for state, *_ in live_trials.values()} == {"COMPLETE", "PRUNED"}


@pytest.mark.slow  # an ASHA sweep through the sweeper
def test_a_sweep_with_hpo_optuna_storage_keeps_the_study_up_to_date(tmp_path, monkeypatch):
    storage = str(tmp_path / "optuna.log")
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["stub.py", "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", "hpo.n_trials=6",
                                      "hpo.scheduler=asha", "+hpo.r_min=1", "+hpo.eta=2", "trainer.max_epochs=4",
                                      "+behaviour.2=fail", f"+hpo.optuna_storage={storage}", "+hpo.progress=off"])
    try:
        stub.main()
    finally:
        GlobalHydra.instance().clear()
    name = default_study_name(tmp_path / "sweep")
    live = optuna.load_study(study_name=name, storage=open_storage(storage))
    trials = trials_by_id(live)
    with open(tmp_path / "sweep" / "trials.csv") as f:
        rows = {int(r["trial_id"]): r for r in csv.DictReader(f)}
    assert set(trials) == set(rows)
    states = {"completed": "COMPLETE", "stopped": "PRUNED", "paused": "PRUNED", "failed": "FAIL"}
    assert {t: state.name for t, (state, *_) in trials.items()} == {t: states[r["status"]] for t, r in rows.items()}
    assert "PRUNED" in {state.name for state, *_ in trials.values()}
    assert live.user_attrs["scheduler"] == "asha"
    # the offline export of the finished sweep says the same (it replaces the live study: same sweep)
    assert trials_by_id(export(tmp_path / "sweep", storage)) == trials


def test_hpo_optuna_storage_mistakes_name_the_key(tmp_path, monkeypatch):
    from hydra_hpo.errors import SettingsError, UserError
    from hydra_hpo.export_optuna import LiveOptunaExport
    from hydra_hpo.settings import HPOSettings

    with pytest.raises(SettingsError, match=r"^hpo.optuna_storage=5: must be an Optuna storage URL"):
        HPOSettings.from_mapping({"optuna_storage": 5})
    space = space_from_structured({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    with pytest.raises(UserError, match=r"^hpo.optuna_storage='.*journal.jsonl': that is the sweep's own journal"):
        LiveOptunaExport(str(tmp_path / "journal.jsonl"), tmp_path, space, "min", "loss")
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(UserError, match=r"^hpo.optuna_storage='o.log': optuna is not installed: pip install "
                                        r"'hydra-hpo\[dashboard\]'"):
        LiveOptunaExport("o.log", tmp_path, space, "min", "loss")
