"""The scale-out topology with real processes: PostgreSQL (Optuna storage and MLflow backend),
one `mlflow server` with proxied artifacts, two sweep workers on one study."""
import signal
import sys

import pytest

from helpers.paths import REPO
from helpers.procs import DEADLINE_S, wait_until
from helpers.scale_out import check_exactly_once, worker
from helpers.servers import PG_PASSWORD

pytestmark = pytest.mark.slow


def test_two_workers_one_study_one_server_exactly_once_and_analysis_through_the_server(topology, procs):
    env, storage, client, tmp = topology
    workers = [worker(procs, env, storage, tmp, epochs=2) for _ in range(2)]  # same moment, fresh databases
    outs = [p.communicate(timeout=DEADLINE_S) for p in workers]
    assert [p.returncode for p in workers] == [0, 0], [o[1][-2000:] for o in outs]
    exp, finished = check_exactly_once(client, storage, [o[1] for o in outs])
    by_worker = {r.data.tags["underspec.worker"] for r in finished}
    assert len(by_worker) == 2  # both workers trained
    for out, err in outs:  # credentials never printed
        assert PG_PASSWORD not in out + err
    for r in finished[:3]:
        assert PG_PASSWORD not in str(r.data.params) + str(r.data.tags)
    res = procs.run([sys.executable, str(REPO / "entrypoints" / "analyze.py"), "--sweep=scale",
                     "--bootstrap=50", f"--out_dir={tmp / 'reports'}"], env=env, cwd=tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    analysis = client.search_runs([exp], "tags.`underspec.role` = 'analysis'")
    assert len(analysis) == 1 and analysis[0].info.status == "FINISHED"
    assert "12 FINISHED training runs" in (tmp / "reports" / "scale" / "report.md").read_text()


def finished_runs(client) -> int:
    exp = client.get_experiment_by_name("scale")
    if exp is None:
        return 0
    return len(client.search_runs([exp.experiment_id], "tags.`underspec.role` = 'train' and attributes.status = "
                                  "'FINISHED'"))


def test_a_worker_killed_and_restarted_still_gives_exactly_once(topology, procs):
    env, storage, client, tmp = topology
    a = worker(procs, env, storage, tmp, epochs=40)
    b = worker(procs, env, storage, tmp, epochs=40)
    wait_until(lambda: finished_runs(client) >= 2, "two FINISHED runs", poll=0.5, alive=b)
    a.send_signal(signal.SIGKILL)  # the main process only, as a crash would; its group is reaped at the end
    a.communicate(timeout=DEADLINE_S)
    again = worker(procs, env, storage, tmp, epochs=40)
    errs = []
    for p in (b, again):
        out, err = p.communicate(timeout=DEADLINE_S)
        assert p.returncode == 0, err[-3000:]
        errs.append(err)
    check_exactly_once(client, storage, errs)
