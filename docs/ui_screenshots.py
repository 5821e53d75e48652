"""The MLflow UI as a new user sees it, checked in a real browser (headless Chromium).

Runs the demo grid on fresh stores in a temporary folder (or uses --store), starts `mlflow ui` on
it, opens links the project prints (they carry ?workflowType=machine_learning) in a fresh browser
profile, checks each page's text, and writes the screenshots to docs/:

  ui_runs.png           the runs page in traditional-ML ("Model training") mode, sweep expanded
  ui_train_run.png      one training run's metric charts
  ui_fig3_1.png         the analysis run's Figure 3.1, previewed in the artifact view
  ui_compare_seeds.png  the chart view: test accuracy and PE across seeds, grouped by lambda and C

Needs: chromium (Debian package) and playwright (`pip install -e '.[ui]'`; it drives the system
chromium, nothing is downloaded). Usage: python docs/ui_screenshots.py [--store DIR] [--out docs]
Exits 1 naming the first check that failed.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEMO = ["name=demo", "seeds=0,1,2", "lambdas=0.0,0.001,0.01", "classes=2,5,10", "epochs=5"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def run_demo(store: Path) -> None:
    bindir = str(Path(sys.executable).parent)  # `mlflow run --env-manager local` runs PATH's python
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
           "PATH": bindir + os.pathsep + os.environ["PATH"]}
    env.pop("MLFLOW_RUN_ID", None)
    cmd = [str(Path(sys.executable).parent / "mlflow"), "run", str(REPO), "-e", "sweep", "--env-manager", "local",
           "--experiment-name", "underspec"] + [a for p in DEMO for a in ("-P", p)]
    subprocess.run(cmd + ["-P", f"storage=sqlite:///{store / 'optuna.db'}"], cwd=store, env=env, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ui(store: Path, port: int) -> subprocess.Popen:
    cmd = [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri",
           f"sqlite:///{store / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=store, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mlflow ui exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return proc
        except OSError:
            time.sleep(0.5)
    raise SystemExit("mlflow ui did not answer /health within 300 s")


def ids(store: Path) -> dict[str, str]:
    """The experiment, the analysis run and one training run of the demo, through the MLflow API."""
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    exp = c.get_experiment_by_name("underspec").experiment_id
    one = lambda role: c.search_runs([exp], f"tags.`underspec.role` = '{role}'", max_results=1)[0].info.run_id  # noqa: E731
    return {"exp": exp, "analysis": one("analysis"), "train": one("train")}


def check(ok: bool, what: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        raise SystemExit(1)


def settle(page, text: str, timeout_ms: int = 120_000) -> None:
    """Wait until the page shows `text` (the UI loads in steps), then let charts draw."""
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout_ms)
    page.wait_for_timeout(1500)


def close_assistant(page) -> None:
    """The UI opens an assistant side panel; close it so the screenshots show the runs."""
    close = page.get_by_role("button", name="Close", exact=True)
    if close.count():
        close.first.click()
        page.wait_for_timeout(500)


def link(base: str, i: dict, page: str) -> str:
    """A UI link as the project prints them: traditional-ML mode from the URL."""
    return f"{base}/#/experiments/{i['exp']}/{page}?workflowType=machine_learning"


def open_page(browser, url: str, text: str):
    """A page of a fresh context (no local storage: the mode comes from the link alone)."""
    page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
    page.goto(url)
    settle(page, text)
    close_assistant(page)
    return page


def runs_page(browser, base: str, i: dict, out: Path) -> None:
    page = open_page(browser, link(base, i, "runs"), "sweep-demo")
    mode = page.get_by_role("radio", name="Model training")
    check(mode.count() == 0 or mode.first.is_checked(), "the runs page opens in Model training (traditional ML) mode")
    check("Evaluations" not in page.inner_text("nav") if page.locator("nav").count() else True,
          "no GenAI sidebar (Evaluations) on the runs page")
    page.locator("button[data-component-id*=runnamecellrenderer]").first.click()  # expand sweep-demo
    settle(page, "s0-l0.0-c2")
    body = page.inner_text("body")
    check("sweep-demo" in body and "s2-l0.01-c10" in body, "sweep-demo expands to its runs s{seed}-l{lambda}-c{C}")
    check("mnist" in body, "the Dataset column names mnist")
    page.screenshot(path=out / "ui_runs.png")


def train_run_page(browser, base: str, i: dict, out: Path) -> None:
    page = open_page(browser, link(base, i, f"runs/{i['train']}/model-metrics"), "test_acc")
    body = page.inner_text("body")
    check(all(k in body for k in ("test_acc", "train_loss", "inactive_units")), "a training run's metric charts")
    page.screenshot(path=out / "ui_train_run.png")


def figure_page(browser, base: str, i: dict, out: Path) -> None:
    page = open_page(browser, link(base, i, f"runs/{i['analysis']}/artifacts/figures/fig3_1.png"), "analysis-demo")
    widest = "() => Math.max(0, ...Array.from(document.images).map(e => e.naturalWidth))"  # a blob: URL
    page.wait_for_function(f"({widest})() > 500", timeout=120_000)
    width = page.evaluate(widest)
    check("figures/fig3_1.png" in page.inner_text("body") and width > 500,
          f"the analysis run previews figures/fig3_1.png ({width} px wide)")
    page.screenshot(path=out / "ui_fig3_1.png")
    page = open_page(browser, link(base, i, f"runs/{i['analysis']}/artifacts/report.md"), "report.md")
    page.locator("h1", has_text="Analysis of sweep").first.wait_for(timeout=120_000)
    check(True, "report.md renders as markdown in the artifact view (its title is an <h1>)")


def compare_page(browser, base: str, i: dict, out: Path) -> None:
    filt = "tags.%60underspec.role%60%3D%27train%27"
    page = open_page(browser, link(base, i, "runs") + f"&compareRunsMode=CHART&searchFilter={filt}", "Group by")
    for param in ("lambda", "classes"):  # the menu closes after each choice
        page.get_by_role("button", name="Group by").first.click()
        page.get_by_role("menuitemcheckbox", name=param, exact=True).click()
        page.wait_for_timeout(800)
    page.keyboard.press("Escape")
    page.get_by_placeholder("Search metric charts").fill("test_acc|vs_ref.pe.params")
    settle(page, "Group: ")
    body = page.inner_text("body")
    check("test_acc" in body and "vs_ref.pe.params" in body, "chart view: test_acc and PE (vs_ref.pe.params) charts")
    check("lambda" in body and "classes" in body, "chart view grouped by lambda and classes")
    page.screenshot(path=out / "ui_compare_seeds.png")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", help="a folder holding a demo's mlflow.db and mlruns/ (default: run the demo)")
    ap.add_argument("--out", default=str(REPO / "docs"), help="where the screenshots go")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="underspec-ui-") as tmp:
        store = Path(args.store or tmp).resolve()
        if not args.store:
            run_demo(store)
        port, out = free_port(), Path(args.out)
        ui = start_ui(store, port)
        try:
            base, i = f"http://127.0.0.1:{port}", ids(store)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                for shot in (runs_page, train_run_page, figure_page, compare_page):
                    shot(browser, base, i, out)
                browser.close()
        finally:
            os.killpg(ui.pid, signal.SIGTERM)
            ui.wait(timeout=60)
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
