"""JupyterLab in a real browser: every notebook with a control runs in JupyterLab, and its control works.

For each notebook whose code calls ``cu.widgets.controls(``: open it in JupyterLab (Chromium, headless), Run All,
wait until every code cell has run and the kernel is idle, check that no cell shows an error and that the control
panel rendered, move the first slider one step with the keyboard (or pick another dropdown entry), and check that
the panel's output changed and still shows no error. On failure, screenshots of the panel before and after, the
whole page, its HTML and the browser's console go to ``tests_browser/artifacts/<notebook>/``.

Run it after the notebooks (``python3 course.py test`` does), so that the model cache is warm.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = Path(os.environ.get("COURSE_BROWSER_ARTIFACTS", Path(__file__).resolve().parent / "artifacts"))
MARKER = "cu.widgets.controls("
RUN_ALL_TIMEOUT = float(os.environ.get("COURSE_BROWSER_RUN_ALL_TIMEOUT", 360))  # warm cache: well under 2 min
CHANGE_TIMEOUT = float(os.environ.get("COURSE_BROWSER_CHANGE_TIMEOUT", 180))    # one control move: seconds
OPEN_TIMEOUT = 120
TRACEBACK = "Traceback (most recent call last)"


def notebooks_with_controls() -> list[Path]:
    found = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if any(c["cell_type"] == "code" and MARKER in "".join(c["source"]) for c in cells):
            found.append(path)
    return found


# JavaScript run in the page, through the app object JupyterLab exposes (--LabApp.expose_app_in_browser).
FIND_PANEL = """(name) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  const w = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === name && w.content);
  return w ? w : null;
}"""

OPENED = "(name) => { const w = (" + FIND_PANEL + """)(name);
  if (!w || !w.context.isReady || !w.sessionContext.session || !w.sessionContext.session.kernel) return false;
  return w.sessionContext.session.kernel.status === 'idle' && w.content.widgets.length > 0;
}"""

RUN_ALL = "(name) => { const w = (" + FIND_PANEL + """)(name);
  window.jupyterapp.shell.activateById(w.id);
  window.jupyterapp.commands.execute('notebook:run-all-cells');
  return true;
}"""

# State of the notebook: kernel status, code cells not run yet, error outputs (from the model), tracebacks and
# widget errors shown anywhere in the notebook (the DOM: an error in a control's update goes to its Output widget).
STATE = "([name, marker]) => { const w = (" + FIND_PANEL + """)(name);
  if (!w) return null;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  let code = 0, pending = 0; const errors = [], controls = [];
  w.content.widgets.forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    code++;
    if (cell.model.executionCount === null) pending++;
    for (const o of cell.model.outputs.toJSON()) {
      if (o.output_type === 'error') errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
    }
    if (cell.model.sharedModel.getSource().includes(marker)) {
      cell.node.setAttribute('data-browser-test', 'controls-' + controls.length);
      controls.push(i);
    }
  });
  w.node.querySelectorAll('.jp-OutputArea-output').forEach(el => {
    const text = el.textContent || '';
    if (text.includes('Traceback (most recent call last)') || text.includes('Error displaying widget')) {
      const cell = el.closest('.jp-Cell');
      const index = cell ? w.content.widgets.findIndex(c => c.node === cell) : -1;
      errors.push(`cell ${index} shows: ` + text.trim().slice(0, 1500));
    }
  });
  return {status: kernel ? kernel.status : 'no kernel', code, pending, errors: [...new Set(errors)], controls};
}"""


class Evidence:
    """Screenshots and notes kept in memory, written to ``tests_browser/artifacts/<notebook>/`` on failure."""

    def __init__(self, name: str):
        self.folder = ARTIFACTS / name
        self.files: dict[str, bytes] = {}
        self.console: list[str] = []
        shutil.rmtree(self.folder, ignore_errors=True)  # artifacts of an earlier failure

    def shot(self, locator, name: str) -> None:
        try:
            self.files[name] = locator.screenshot(timeout=15_000)
        except Exception as exc:  # a screenshot is evidence, not the test
            self.console.append(f"[screenshot {name} failed: {exc}]")

    def save(self, page, lab) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self.files["page.png"] = page.screenshot(full_page=True, timeout=30_000)
            self.files["page.html"] = page.content().encode()
        except Exception as exc:
            self.console.append(f"[page screenshot failed: {exc}]")
        self.files["console.txt"] = "\n".join(self.console).encode()
        self.files["jupyterlab.log"] = lab.log_tail(50_000).encode()
        for name, data in self.files.items():
            (self.folder / name).write_bytes(data)
        return self.folder


def wait_for(page, what: str, check, timeout: float, interval: float = 0.5):
    """Poll ``check()`` until it returns something true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            what = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)
        page.wait_for_timeout(interval * 1000)


def move_control(panel):
    """Move the panel's first slider one step (keyboard), else pick another dropdown entry, else click a
    checkbox. Returns a description of the move."""
    handles = panel.locator(".widget-slider .noUi-handle")
    if handles.count():
        handle = handles.first
        slider = panel.locator(".widget-slider").first
        label = slider.locator(".widget-label").first.inner_text().strip()
        before = slider.locator(".widget-readout").first.inner_text().strip()
        now, top = (float(handle.get_attribute(a) or 0) for a in ("aria-valuenow", "aria-valuemax"))
        key = "ArrowLeft" if now >= top else "ArrowRight"
        handle.focus()
        handle.press(key)
        after = wait_for(panel.page, f"slider {label!r} to move",
                         lambda: (slider.locator(".widget-readout").first.inner_text().strip() != before
                                  and slider.locator(".widget-readout").first.inner_text().strip()), 10)
        return f"slider {label}: {before} -> {after} ({key})"
    selects = panel.locator(".widget-dropdown select")
    if selects.count():
        select = selects.first
        values = select.locator("option").evaluate_all("os => os.map(o => o.value)")
        current = select.input_value()
        other = next(v for v in values if v != current)
        select.select_option(other)
        return f"dropdown: {current} -> {other}"
    checkbox = panel.locator(".widget-checkbox input").first
    checkbox.click()
    return "checkbox clicked"


@pytest.mark.parametrize("notebook", notebooks_with_controls(), ids=lambda p: p.stem)
def test_control_changes_its_output(notebook, chromium, lab):
    name = notebook.name
    evidence = Evidence(notebook.stem)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.on("console", lambda m: evidence.console.append(f"[{m.type}] {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: evidence.console.append(f"[pageerror] {e}"))
    state = lambda: page.evaluate(STATE, [name, MARKER])  # noqa: E731
    started = time.monotonic()
    try:
        # A workspace of its own: only this notebook opens (no layout restored from an earlier one).
        page.goto(f"{lab.url}/lab/workspaces/browser-test-{notebook.stem}/tree/{name}?token={lab.token}",
                  timeout=OPEN_TIMEOUT * 1000)
        wait_for(page, f"{name} to open with an idle kernel", lambda: page.evaluate(OPENED, name), OPEN_TIMEOUT)
        page.evaluate(RUN_ALL, name)

        def finished():
            s = state()
            if s and s["errors"]:
                return s  # stop waiting: Run All stops at an error
            return s if s and s["pending"] == 0 and s["status"] == "idle" else None

        s = wait_for(page, lambda: f"Run All of {name} ({(state() or {}).get('pending')} code cells not run yet)",
                     finished, RUN_ALL_TIMEOUT)
        run_all_s = time.monotonic() - started
        assert not s["errors"], f"{name}: errors after Run All:\n" + "\n".join(s["errors"])
        assert s["controls"], f"{name}: no cell calling {MARKER} found in JupyterLab"

        for k, index in enumerate(s["controls"]):
            cell = page.locator(f'[data-browser-test="controls-{k}"]')
            panel = cell.locator(".jp-OutputArea-output .widget-vbox").first
            wait_for(page, f"the control panel of cell {index} to render",
                     lambda: panel.count() and panel.locator(".widget-output").count(), 60)
            output = panel.locator(".widget-output").first
            before = wait_for(page, f"the first output of the control panel of cell {index}",
                              lambda: output.inner_html() if output.inner_text().strip() or
                              output.locator("img").count() else None, 60)
            cell.scroll_into_view_if_needed()
            evidence.shot(cell, f"controls-{k}-before.png")
            moved = move_control(panel)
            last = {"html": None}

            def changed():
                s = state()
                if s["errors"]:
                    return s
                html = output.inner_html()
                has_content = bool(output.inner_text().strip()) or output.locator("img").count() > 0
                stable = html == last["html"]  # the same on two polls in a row: the redraw is over
                last["html"] = html
                return s if html != before and has_content and stable and s["status"] == "idle" else None

            t0 = time.monotonic()
            s = wait_for(page, f"the output of cell {index} to change after {moved}", changed, CHANGE_TIMEOUT)
            evidence.shot(cell, f"controls-{k}-after.png")
            assert not s["errors"], f"{name}: errors after {moved}:\n" + "\n".join(s["errors"])
            print(f"{name}: Run All {run_all_s:.0f} s; cell {index}: {moved}: output changed in "
                  f"{time.monotonic() - t0:.1f} s")
    except BaseException:
        folder = evidence.save(page, lab)
        print(f"\nbrowser test of {name} failed: screenshots, page HTML and console in {folder}")
        raise
    finally:
        context.close()
        lab.shut_down_kernels()


def test_some_notebook_has_a_control():
    assert notebooks_with_controls(), f"no notebook calls {MARKER}: the browser test would test nothing"
