"""A room of learners on one machine: JupyterHub with N simulated learners, each running notebook 00 in its own server.

For each round of N learners (``--learners 1 2 4``, each round ``--repeats`` times) the hub starts N single-user
servers through its REST API; every learner opens ``notebooks/00_background.ipynb`` in a session of its own server
(as JupyterLab does) and executes its code cells one by one over the kernel's websocket, all learners at once.
Recorded per learner: spawn time, notebook wall time, CPU seconds of its kernel and server, and their memory (RSS,
and USS: what the process alone holds, shared libraries excluded) at the peak and when the notebook has finished
(the kernel stays open, as a learner's does); per round: the machine's used memory and the CPU other processes took
meanwhile (the noise). The model cache (``--cache-dir``, set as ``COURSE_CACHE_DIR``) is shared by every learner and
first filled by one run of the notebook (``--skip-prefill`` when it already is); ``--threads`` sets
``OMP_NUM_THREADS`` per kernel.

Everything listens on 127.0.0.1 and is stopped at the end. The hub is not a course dependency: install it apart
(the servers run from that environment, the kernels from the course's ``.venv`` through a kernelspec written here):

    python3 -m venv /tmp/hub-env && /tmp/hub-env/bin/pip install jupyterhub jupyterlab
    npm install --prefix /tmp/hub-env configurable-http-proxy
    .venv/bin/python benchmarks/jupyterhub.py --hub-env /tmp/hub-env --learners 1 2 4 --threads 1

Results go to ``benchmarks/results/jupyterhub.json`` (a temporary file, then renamed; ``--append`` adds a run to
those there). Not run in CI. ``SimpleLocalProcessSpawner`` and the dummy authenticator: no system users, no
isolation, a benchmark and never a deployment; see ``deploy/`` for real workshops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
from _report import write_json

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "jupyterhub.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the hub

HUB_CONFIG = """\
# run in the temporary folder: the database, cookie secret and proxy pid file land there
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = {work!r} + "/home/{{username}}"
c.Spawner.ip = "127.0.0.1"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root"] if {root} else []
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {environment!r}
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "bench", "services": ["bench"],
                             "scopes": ["admin:users", "admin:servers", "access:servers"]}}]
c.JupyterHub.concurrent_spawn_limit = 200
"""


class Hub:
    """A JupyterHub on 127.0.0.1 in a temporary folder; ``async with Hub(...)`` starts and stops it."""

    def __init__(self, hub_env: Path, chp: str, work: Path, environment: dict):
        self.work, self.token = work, secrets.token_hex(32)
        self.port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        singleuser = str(hub_env / "bin" / "jupyterhub-singleuser")
        (work / "home").mkdir(parents=True, exist_ok=True)
        (work / "jupyterhub_config.py").write_text(HUB_CONFIG.format(
            port=self.port, hub_port=hub_port, proxy_api_port=proxy_api_port, chp=chp, work=str(work),
            singleuser=singleuser, root=os.geteuid() == 0, environment=environment, token=self.token))
        self.cmd = [str(hub_env / "bin" / "jupyterhub"), "-f", str(work / "jupyterhub_config.py")]
        self.env = dict(os.environ, PATH=f"{hub_env / 'bin'}{os.pathsep}{Path(chp).parent}{os.pathsep}"
                                         f"{os.environ.get('PATH', '')}")
        self.proc = None

    async def __aenter__(self):
        self.log = open(self.work / "hub.log", "w")
        self.proc = subprocess.Popen(self.cmd, cwd=self.work, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        for _ in range(120):
            await asyncio.sleep(0.5)
            if self.proc.poll() is not None:
                break
            try:
                await self.api("GET", "/hub/api/")
                return self
            except Exception:  # noqa: BLE001 - not up yet
                continue
        await self.__aexit__()  # stop whatever did start (the proxy)
        raise RuntimeError(f"the hub did not answer within 60 s or exited: see {self.work / 'hub.log'}")

    async def __aexit__(self, *exc):
        procs = self.descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # cleanup_servers: the hub stops every server and the proxy
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for p in procs:  # anything left (a kernel whose server died first): these ids only
            with contextlib.suppress(psutil.Error):
                p.terminate()
        for p in psutil.wait_procs(procs, timeout=10)[1]:
            with contextlib.suppress(psutil.Error):
                p.kill()
        self.log.close()

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []

    async def api(self, method: str, path: str, body=None):
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest

        req = HTTPRequest(self.url + path, method=method, headers={"Authorization": f"token {self.token}"},
                          body=None if body is None and method in ("GET", "DELETE") else json.dumps(body or {}),
                          request_timeout=180, allow_nonstandard_methods=True)
        resp = await AsyncHTTPClient().fetch(req)
        return json.loads(resp.body) if resp.body else None

    def server_of(self, user: str) -> psutil.Process:
        """The single-user server (a child of the hub) of this user."""
        for p in psutil.Process(self.proc.pid).children():
            with contextlib.suppress(psutil.Error):
                if p.environ().get("JUPYTERHUB_USER") == user:
                    return p
        raise RuntimeError(f"no server process for {user}")


# --------------------------------------------------------------------------- one learner


def _message(msg_type: str, content: dict, session: str, channel: str = "shell") -> dict:
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "learner", "session": session, "msg_type": msg_type,
                       "version": "5.3", "date": datetime.datetime.now(datetime.timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "content": content, "channel": channel, "buffers": []}


class Learner:
    """One simulated learner: a server of its own, a notebook session in it, its cells executed over a websocket."""

    def __init__(self, hub: Hub, name: str, notebook: Path):
        self.hub, self.name, self.notebook = hub, name, notebook
        self.row = {"learner": name}
        self.server = self.kernel = None
        self.peak = {"server_rss": 0, "kernel_rss": 0, "server_uss": 0, "kernel_uss": 0}

    async def start_server(self):
        home = self.hub.work / "home" / self.name / "notebooks"  # what nbgitpuller would have pulled
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.notebook, home / self.notebook.name)
        await self.hub.api("POST", f"/hub/api/users/{self.name}", {})
        start = time.perf_counter()
        await self.hub.api("POST", f"/hub/api/users/{self.name}/server", {})
        while True:
            user = await self.hub.api("GET", f"/hub/api/users/{self.name}")
            server = user.get("servers", {}).get("")
            if server and server.get("ready"):
                break
            await asyncio.sleep(0.25)
        self.row["spawn_s"] = round(time.perf_counter() - start, 2)
        self.base = f"/user/{self.name}"

    async def open_notebook(self):
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        rel = f"notebooks/{self.notebook.name}"
        session = await self.hub.api("POST", f"{self.base}/api/sessions",
                                     {"path": rel, "name": self.notebook.name, "type": "notebook",
                                      "kernel": {"name": "python3"}})
        self.kernel_id, self.session = session["kernel"]["id"], uuid.uuid4().hex
        url = (self.hub.url.replace("http", "ws", 1)
               + f"{self.base}/api/kernels/{self.kernel_id}/channels?session_id={self.session}")
        self.ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {self.hub.token}"}),
                                          max_message_size=256 * 2**20)
        await self.request("kernel_info_request", {})  # the kernel is up and answering
        self.server = self.hub.server_of(self.name)
        kernels = [p for p in self.server.children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
        if len(kernels) != 1:
            raise RuntimeError(f"{self.name}: expected one kernel under its server, found {len(kernels)}")
        self.kernel = kernels[0]
        self.sample()
        self.row["idle_kernel_rss_mib"] = round(self.kernel.memory_info().rss / 2**20)
        self.row["idle_server_rss_mib"] = round(self.server.memory_info().rss / 2**20)

    async def request(self, msg_type: str, content: dict) -> dict:
        """Send one shell request; return its reply once the kernel is idle again (outputs and errors collected)."""
        msg = _message(msg_type, content, self.session)
        await self.ws.write_message(json.dumps(msg))
        reply, idle, errors = None, False, []
        while reply is None or not idle:
            raw = await self.ws.read_message()
            if raw is None:
                raise RuntimeError(f"{self.name}: the kernel's websocket closed")
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                continue
            kind = m["header"]["msg_type"]
            if m.get("channel") == "shell" and kind.endswith("_reply"):
                reply = m
            elif kind == "status" and m["content"].get("execution_state") == "idle":
                idle = True
            elif kind == "error":
                errors.append(f"{m['content']['ename']}: {m['content']['evalue']}")
        if errors or reply["content"].get("status") == "error":
            raise RuntimeError(f"{self.name}: {errors or reply['content']}")
        return reply

    async def run_notebook(self):
        import nbformat

        nb = nbformat.read(self.notebook, as_version=4)
        cells = [c.source for c in nb.cells if c.cell_type == "code" and c.source.strip()]
        cpu0 = {k: sum(p.cpu_times()[:2]) for k, p in (("kernel", self.kernel), ("server", self.server))}
        start, seconds = time.perf_counter(), []
        for source in cells:
            t0 = time.perf_counter()
            await self.request("execute_request", {"code": source, "silent": False, "store_history": True,
                                                   "user_expressions": {}, "allow_stdin": False,
                                                   "stop_on_error": True})
            seconds.append(time.perf_counter() - t0)
        self.row["notebook_wall_s"] = round(time.perf_counter() - start, 1)
        slowest = sorted(range(len(cells)), key=seconds.__getitem__, reverse=True)[:3]
        self.row["slowest_cells"] = [{"code_cell": i + 1, "s": round(seconds[i], 1),
                                      "first_line": cells[i].strip().splitlines()[0][:80]} for i in slowest]
        self.row["cells"] = len(cells)
        self.row["kernel_cpu_s"] = round(sum(self.kernel.cpu_times()[:2]) - cpu0["kernel"], 1)
        self.row["server_cpu_s"] = round(sum(self.server.cpu_times()[:2]) - cpu0["server"], 2)
        self.sample()
        for key, proc in (("kernel", self.kernel), ("server", self.server)):
            info = proc.memory_full_info()
            self.row[f"after_{key}_rss_mib"], self.row[f"after_{key}_uss_mib"] = (round(info.rss / 2**20),
                                                                                  round(info.uss / 2**20))

    def sample(self):
        for key, proc in (("server", self.server), ("kernel", self.kernel)):
            with contextlib.suppress(psutil.Error, AttributeError):  # None before the notebook is open
                info = proc.memory_full_info()
                self.peak[f"{key}_rss"] = max(self.peak[f"{key}_rss"], info.rss)
                self.peak[f"{key}_uss"] = max(self.peak[f"{key}_uss"], info.uss)

    def finish(self) -> dict:
        for key, value in self.peak.items():
            self.row[f"peak_{key}_mib"] = round(value / 2**20)
        self.row["peak_rss_mib"] = self.row["peak_server_rss_mib"] + self.row["peak_kernel_rss_mib"]
        self.row["peak_uss_mib"] = self.row["peak_server_uss_mib"] + self.row["peak_kernel_uss_mib"]
        return self.row

    async def stop(self):
        with contextlib.suppress(Exception):
            self.ws.close()
        await self.hub.api("DELETE", f"/hub/api/users/{self.name}/server")
        for _ in range(120):  # a user whose server is still stopping cannot be deleted
            user = await self.hub.api("GET", f"/hub/api/users/{self.name}")
            if not user.get("servers"):
                break
            await asyncio.sleep(0.25)
        await self.hub.api("DELETE", f"/hub/api/users/{self.name}")


# --------------------------------------------------------------------------- a round of N learners


async def one_round(hub: Hub, n: int, notebook: Path, repeat: int) -> dict:
    learners = [Learner(hub, f"learner-{n}-{repeat}-{i}", notebook) for i in range(n)]
    used0 = psutil.virtual_memory().used
    start = time.perf_counter()
    await asyncio.gather(*(l.start_server() for l in learners))
    spawn_all = time.perf_counter() - start
    await asyncio.gather(*(l.open_notebook() for l in learners))
    idle_used = psutil.virtual_memory().used

    ours = [psutil.Process(), psutil.Process(hub.proc.pid)] + hub.descendants()

    def our_cpu() -> float:
        total = 0.0
        for p in ours:
            with contextlib.suppress(psutil.Error):
                total += sum(p.cpu_times()[:2])
        return total

    busy0, mine0 = _busy(), our_cpu()
    peak_used, done = idle_used, asyncio.Event()

    async def sampler():
        nonlocal peak_used
        while not done.is_set():
            for l in learners:
                l.sample()
            peak_used = max(peak_used, psutil.virtual_memory().used)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), 1.0)

    sampling = asyncio.create_task(sampler())
    start = time.perf_counter()
    try:
        await asyncio.gather(*(l.run_notebook() for l in learners))
    finally:
        done.set()
        await sampling
    wall = time.perf_counter() - start
    other = max(0.0, (_busy() - busy0) - (our_cpu() - mine0))
    rows = [l.finish() for l in learners]
    after_used = psutil.virtual_memory().used
    await asyncio.gather(*(l.stop() for l in learners))
    walls = [r["notebook_wall_s"] for r in rows]
    result = {
        "learners": n, "repeat": repeat, "spawn_all_s": round(spawn_all, 1), "round_wall_s": round(wall, 1),
        "notebook_wall_s_median": statistics.median_low(walls), "notebook_wall_s_max": max(walls),
        "kernel_cpu_s_mean": round(sum(r["kernel_cpu_s"] for r in rows) / n, 1),
        "machine_used_mib": {"before": round(used0 / 2**20), "servers_and_kernels_idle": round(idle_used / 2**20),
                             "peak": round(peak_used / 2**20), "after_notebook": round(after_used / 2**20)},
        "machine_used_per_learner_mib": round((after_used - used0) / 2**20 / n),
        "other_processes_cpu_cores": round(other / wall, 2),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "per_learner": rows,
    }
    print(f"{n} learner(s), repeat {repeat}: notebook {result['notebook_wall_s_median']} s (max {max(walls)} s), "
          f"kernel CPU {result['kernel_cpu_s_mean']} s each, peak server+kernel RSS "
          f"{max(r['peak_rss_mib'] for r in rows)} MiB, other load {result['other_processes_cpu_cores']} cores",
          flush=True)
    return result


def _busy() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)


def _median(rows: list[dict], key: str):
    return statistics.median_low(row[key] for row in rows)


def summarise(rounds: list[dict]) -> list[dict]:
    table = []
    for n in sorted({r["learners"] for r in rounds}):
        rs = [r for r in rounds if r["learners"] == n]
        rows = [row for r in rs for row in r["per_learner"]]
        median = functools.partial(_median, rows)
        table.append({
            "learners": n, "rounds": len(rs),
            "notebook_wall_s_median": median("notebook_wall_s"),
            "notebook_wall_s_max": max(row["notebook_wall_s"] for row in rows),
            "kernel_cpu_s_median": median("kernel_cpu_s"), "spawn_s_median": median("spawn_s"),
            "peak_server_plus_kernel_rss_mib_max": max(row["peak_rss_mib"] for row in rows),
            "peak_server_plus_kernel_uss_mib_max": max(row["peak_uss_mib"] for row in rows),
            "after_kernel_rss_mib_median": median("after_kernel_rss_mib"),
            "after_kernel_uss_mib_median": median("after_kernel_uss_mib"),
            "idle_server_rss_mib_median": median("idle_server_rss_mib"),
            "machine_used_per_learner_mib_max": max(r["machine_used_per_learner_mib"] for r in rs),
            "other_processes_cpu_cores_max": max(r["other_processes_cpu_cores"] for r in rs),
        })
    return table


# --------------------------------------------------------------------------- main


def prefill_cache(notebook: Path, env: dict) -> float:
    """Run the notebook once with the shared cache, as the instructor does before the workshop; return seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "execute_notebooks.py"), "--no-write",
                    str(notebook.with_suffix(".py"))], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def write_kernelspec(folder: Path) -> None:
    """The course's kernel (.venv's Python) as ``python3`` for every learner's server (via JUPYTER_PATH)."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (course)", "language": "python"}))


async def amain(args) -> dict:
    hub_env = args.hub_env.resolve()
    if not (hub_env / "bin" / "jupyterhub").exists():
        raise SystemExit(f"no jupyterhub in {hub_env}: see this script's docstring for the two install commands")
    candidates = [args.proxy, shutil.which("configurable-http-proxy")] + [
        str(d / "node_modules" / ".bin" / "configurable-http-proxy") for d in (hub_env, hub_env.parent)]
    chp = next((c for c in candidates if c and Path(c).exists()), None)
    if chp is None:
        raise SystemExit("configurable-http-proxy not found: npm install --prefix HUB_ENV configurable-http-proxy")
    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    cache = args.cache_dir or work / "checkpoints"
    data = args.data_dir.expanduser().resolve()
    environment = {"COURSE_CACHE_DIR": str(cache), "COURSE_DATA_DIR": str(data), "COURSE_PROGRESS": "0",
                   "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JUPYTER_PATH": str(work / "share" / "jupyter")}
    if args.threads:
        environment.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    write_kernelspec(work / "share" / "jupyter")
    try:
        prefill = None
        if not args.skip_prefill:
            prefill = prefill_cache(args.notebook, dict(os.environ, **environment))
            print(f"shared model cache {cache} filled by one run of {args.notebook.name}: {prefill:.0f} s", flush=True)
        rounds = []
        async with Hub(hub_env, chp, work, environment) as hub:
            print(f"hub on {hub.url} (127.0.0.1 only)", flush=True)
            for repeat in range(args.repeats):
                for n in args.learners:
                    rounds.append(await one_round(hub, n, args.notebook, repeat))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run([str(hub_env / "bin" / "jupyterhub"), "--version"], capture_output=True,
                             text=True).stdout.strip()
    import torch

    vm = psutil.virtual_memory()
    return {
        "measured": datetime.date.today().isoformat(),
        "command": "python benchmarks/jupyterhub.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(vm.total / 2**30, 1),
                    "python": sys.version.split()[0], "torch": torch.__version__,
                    "torch_threads_per_kernel": args.threads or torch.get_num_threads(), "jupyterhub": version},
        "setup": {"notebook": f"notebooks/{args.notebook.name}",
                  "spawner": "jupyterhub.spawner.SimpleLocalProcessSpawner", "authenticator": "dummy",
                  "model_cache": "shared; " + ("given as already filled" if prefill is None
                                               else "pre-filled by one run of the notebook"),
                  "cache_prefill_s": None if prefill is None else round(prefill, 1),
                  "execution": "each learner: a session in its own server (REST), code cells over the kernel's "
                               "websocket, all learners at once"},
        "summary": summarise(rounds),
        "rounds": rounds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hub-env", type=Path, required=True, help="virtual environment holding jupyterhub")
    parser.add_argument("--proxy", help="configurable-http-proxy executable (default: PATH, then HUB_ENV/node_modules)")
    parser.add_argument("--learners", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--notebook", type=Path, default=ROOT / "notebooks" / "00_background.ipynb")
    parser.add_argument("--cache-dir", type=Path, help="shared model cache (default: a new one, filled first)")
    parser.add_argument("--skip-prefill", action="store_true", help="the --cache-dir is already filled")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("COURSE_DATA_DIR",
                                                                           "~/.cache/course_utils/data")))
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS per kernel (default: PyTorch's)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--append", action="store_true", help="add this run to those already in --out")
    parser.add_argument("--keep", action="store_true", help="keep the hub's temporary folder (logs)")
    args = parser.parse_args()
    args.notebook = args.notebook.resolve()
    runs = json.loads(args.out.read_text())["runs"] if args.append and args.out.exists() else []
    runs.append(asyncio.run(amain(args)))
    write_json({"runs": runs}, args.out)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
