"""End to end through `mlflow run` (MLflow Projects, local env manager), on the real MNIST."""
import hashlib
from pathlib import Path

import pytest
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from helpers.contracts import check_contract
from helpers.stores import mlflow_project_store, mlflow_run

pytestmark = pytest.mark.slow


@pytest.fixture()
def project_store(tmp_path, mnist_root):
    return mlflow_project_store(tmp_path, mnist_root)


def test_train_entry_point_makes_eight_nested_finished_runs(project_store, procs):
    client, exp, env = project_store
    res = mlflow_run(procs, env, "train", "seeds=0,42", "lambdas=0.0,0.001", "classes=2,9", "epochs=2")
    assert res.returncode == 0, res.stderr[-3000:]
    runs = client.search_runs([exp], "")
    parent = [r for r in runs if r.data.tags.get("underspec.role") == "batch"]
    children = [r for r in runs if r.data.tags.get("underspec.role") == "train"]
    assert len(parent) == 1 and len(children) == 8 and len(runs) == 9
    assert parent[0].info.status == "FINISHED"
    assert parent[0].info.run_name == "train-s0,42-l0.0,0.001-c2,9-e2"  # MLflow Projects' run, renamed
    assert parent[0].data.params["seeds"] == "0,42"  # MLflow Projects logged the -P values
    assert {c.data.tags[MLFLOW_PARENT_RUN_ID] for c in children} == {parent[0].info.run_id}
    specs = {check_contract(client, c, epochs=2) for c in children}
    assert {(s.seed, s.lam, s.classes) for s in specs} == \
        {(s, lam, c) for s in (0, 42) for lam in (0.0, 0.001) for c in (2, 9)}


@pytest.mark.parametrize("param", ["lambdas=-1", "classes=1,2", "batch_size=zero"])
def test_bad_input_through_mlflow_run_leaves_only_mlflows_failed_run(project_store, param, procs):
    client, exp, env = project_store
    res = mlflow_run(procs, env, "train", param, "epochs=1")
    assert res.returncode != 0
    assert f"invalid {param.split('=')[0]}=" in res.stderr
    runs = client.search_runs([exp], "")
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    assert "underspec.role" not in runs[0].data.tags
    assert not client.list_artifacts(runs[0].info.run_id)


def test_sweep_entry_point_then_rerun_adds_nothing(project_store, tmp_path, procs):
    import optuna
    from optuna.trial import TrialState

    client, exp, env = project_store
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    params = ["name=t", "seeds=0,1", "lambdas=0.0,0.01", "classes=2,3", "epochs=1", "analyze=false",
              f"storage={storage}"]
    res = mlflow_run(procs, env, "sweep", *params)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = client.search_runs([exp], "")
    train = [r for r in runs if r.data.tags.get("underspec.role") == "train"]
    sweep = [r for r in runs if r.data.tags.get("underspec.role") == "sweep"]
    assert len(train) == 8 and {r.info.status for r in train} == {"FINISHED"}
    assert {r.data.tags["underspec.sweep"] for r in train} == {"t"}
    assert len(sweep) == 1 and {r.data.tags[MLFLOW_PARENT_RUN_ID] for r in train} == {sweep[0].info.run_id}
    ts = optuna.load_study(study_name="t", storage=storage).get_trials()
    assert len(ts) == 8 and {t.state for t in ts} == {TrialState.COMPLETE}
    again = mlflow_run(procs, env, "sweep", *params)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    runs2 = client.search_runs([exp], "")
    assert len([r for r in runs2 if r.data.tags.get("underspec.role") == "train"]) == 8
    assert len(runs2) == len(runs) + 1  # only MLflow Projects' own run for the command
    assert len(optuna.load_study(study_name="t", storage=storage).get_trials()) == 8


def test_analyze_entry_point_after_a_small_sweep(project_store, tmp_path, procs):
    client, exp, env = project_store
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    res = mlflow_run(procs, env, "sweep", "name=small", "seeds=0,1,2", "lambdas=0.0,0.01", "classes=2,4", "epochs=2",
                     "analyze=false", f"storage={storage}")
    assert res.returncode == 0, res.stderr[-3000:]
    res = mlflow_run(procs, env, "analyze", "sweep=small", f"out_dir={tmp_path / 'reports'}", "bootstrap=100")
    assert res.returncode == 0, res.stderr[-3000:]
    runs = client.search_runs([exp], "tags.`underspec.role` = 'analysis'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["underspec.sweep"] == "small" and runs[0].info.run_name == "analysis-small"
    arts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert "metrics.csv" in arts
    assert "figures/fig3_1.png" in {a.path for a in client.list_artifacts(runs[0].info.run_id, "figures")}
    cells = client.search_runs([exp], "tags.`underspec.role` = 'analysis-cell'")
    assert len(cells) == 4 and all("apc1.params.reference" in c.data.metrics for c in cells)


def idx_digest(root: Path) -> str:
    """The data's digest, written out here: sha256 over the four IDX files' md5 hex digests."""
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    md5s = "".join(hashlib.md5((root / "MNIST" / "raw" / n).read_bytes()).hexdigest() for n in names)
    return hashlib.sha256(md5s.encode()).hexdigest()[:32]


def test_a_demo_reads_back_as_the_ui_shows_it(project_store, tmp_path, mnist_root, procs):
    """Names, descriptions, the experiment's kind, dataset inputs and previews, through the API."""
    client, exp, env = project_store
    res = mlflow_run(procs, env, "sweep", "name=demo", "seeds=0,1", "lambdas=0.0,0.01", "classes=2,3", "epochs=2",
                     f"storage=sqlite:///{tmp_path / 'optuna.db'}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert client.get_experiment(exp).tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([exp], "")
    by_role = {}
    for r in runs:
        by_role.setdefault(r.data.tags.get("underspec.role"), []).append(r)
    (sweep,), (analysis,) = by_role["sweep"], by_role["analysis"]
    assert sweep.info.run_name == "sweep-demo" and analysis.info.run_name == "analysis-demo"
    note = sweep.data.tags["mlflow.note.content"]
    assert "8 runs = seeds 0, 1 x lambdas 0.0, 0.01 x classes 2, 3" in note and "8/8 points" in note
    assert sweep.data.tags["underspec.analysis_run"] == analysis.info.run_id
    assert f"/runs/{analysis.info.run_id}?workflowType=machine_learning" in note
    assert "8 runs in 4 cells" in analysis.data.tags["mlflow.note.content"]
    train = by_role["train"]
    assert len(train) == 8
    digest = idx_digest(mnist_root)
    for r in train:
        (di,) = r.inputs.dataset_inputs
        assert (di.dataset.name, di.dataset.digest, di.dataset.source_type) == ("mnist", digest, "local")
        assert str(mnist_root.resolve()) in di.dataset.source
        assert {t.key: t.value for t in di.tags} == {"mlflow.data.context": f"classes={r.data.params['classes']}"}
    images = {a.path for a in client.list_artifacts(analysis.info.run_id, "images")}
    assert any("fig3_1" in p for p in images), images  # the run page previews Figure 3.1
    assert "sweep demo: 8/8 points, 16/16 model-epochs" in res.stderr  # progress without a TTY
    assert f"#/experiments/{exp}/runs/{sweep.info.run_id}?workflowType=machine_learning" in res.stderr
