"""Fixtures of the browser test: Debian's Chromium driven by Playwright, and a JupyterLab started for the test.

The browser test runs after the notebooks (``pytest ... tests notebooks tests_browser``), so the model cache
(``$COURSE_CACHE_DIR``) is warm and each notebook's Run All takes seconds, not minutes. JupyterLab serves a COPY
of the notebooks (outputs cleared, no ``.py`` pairs, jupytext's contents manager off), so the committed
notebooks are never touched, whatever JupyterLab autosaves.

Without Chromium or the ``playwright`` package the test is skipped, except in CI (``CI=true``), where it fails.
Chromium: ``$COURSE_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on the PATH (Debian: ``apt-get install
chromium``). Playwright's own browser download is not used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LAB_START_TIMEOUT = 180  # seconds until JupyterLab answers
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
# JupyterLab settings for the test: every cell in the DOM (no virtual scrolling), no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(reason: str):
    """Skip on a developer's machine; fail in CI, where the browser test must run."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the browser test must run; .ci/run installs Debian's chromium)",
                    pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    wanted = os.environ.get("COURSE_CHROMIUM")
    if wanted:
        return wanted if Path(wanted).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: its URL, token and folder, and a small REST client."""

    def __init__(self, url: str, token: str, root: Path, log: Path):
        self.url, self.token, self.root, self.log = url, token, root, log

    def api(self, method: str, path: str):
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session (and its kernel), so one notebook's kernel does not compete with the next."""
        for session in self.api("GET", "/api/sessions") or []:
            try:
                self.api("DELETE", f"/api/sessions/{session['id']}")
            except urllib.error.URLError:
                pass

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def copy_notebooks(dest: Path) -> None:
    """Copy notebooks/*.ipynb, outputs and execution counts cleared: what the browser shows comes from this run."""
    dest.mkdir(parents=True)
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        nb.get("metadata", {}).pop("widgets", None)
        nb.get("metadata", {}).pop("jupytext", None)
        (dest / path.name).write_text(json.dumps(nb, indent=1), encoding="utf-8")


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, launched headless through Playwright's Python API (one browser for every notebook)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the browser test needs the playwright package (pip install playwright; it is in the dev extras)")
    executable = chromium_path()
    if executable is None:
        missing("the browser test needs Chromium (Debian: apt-get install chromium; or set COURSE_CHROMIUM)")
    pw = sync_playwright().start()
    try:
        # launch() gives the browser a fresh, temporary user-data dir, removed when it closes.
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:
        pw.stop()
        missing(f"Chromium at {executable} did not start through Playwright: {exc}")
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture(scope="session")
def lab(chromium, tmp_path_factory):
    """JupyterLab on 127.0.0.1 serving a copy of the notebooks; shut down at the end of the session."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    copy_notebooks(root)
    config = base / "config"
    config.mkdir()
    # A private config dir: no user settings of this machine, and jupytext's contents manager off (no .py pairs).
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"jupyterlab_jupytext": False}}}))
    settings = base / "settings"
    for name, value in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value))
    token, port = secrets.token_hex(16), free_port()
    env = dict(os.environ, COURSE_PROGRESS="0", JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("JUPYTER_TOKEN", None)
    for name in ("COURSE_CACHE_DIR", "COURSE_DATA_DIR"):  # the kernels use the same cache and data as this run
        if name in os.environ:
            env[name] = str(Path(os.environ[name]).resolve())
    log = base / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--IdentityProvider.token={token}",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
           "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI runs as root
        cmd.append("--ServerApp.allow_root=True")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    server = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + LAB_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}", pytrace=False)
            try:
                server.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {LAB_START_TIMEOUT} s:\n{server.log_tail()}",
                                pytrace=False)
                time.sleep(0.5)
        yield server
    finally:
        proc.terminate()  # SIGTERM: the server shuts its kernels down
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
