"""Finds the fenced code blocks of README.md and docs/*.md and runs each; tests/test_docs.py drives it.

Conventions (a directive is an HTML comment right before a block, so readers never see it)::

    <!-- doc-test: key=value key "key=value with spaces" ... -->

(options may go on over several lines) or, to complete a fragment into a program, with the
program after a line holding only ``program:``, where a line holding only ``{block}`` stands for
the block (indented as that line is)::

    <!-- doc-test: prints=42
    program:
    def main() -> None:
        {block}
    main()
    -->

``python`` blocks are programs: run with this venv's python in a fresh directory, exit status 0.
When the paragraph after the block starts with "It prints `a` then `b`", stdout must be exactly
those lines (``prints=`` says the same in a directive). Every python block also goes through
``mypy --strict`` (see :func:`mypy_block`). Options:

- ``ports=8080,...``: each such port number in the program becomes a free port;
- ``live=module:setup``: ``twistd txrealtime --app module:setup`` runs on the first of ``ports``;
- ``redis=6379``: a private redis-server runs, on a free port that replaces this one;
- ``redis-cluster=7000,7001,7002``: a private three-master Redis Cluster runs, on free ports replacing these;
- ``server``: the program serves forever: started, probed (``probe=``, default: a python-socketio
  client connects), then stopped;
- ``test=pytest`` / ``test=trial``: the block is a test module, run with ``python -m pytest`` /
  ``python -m twisted.trial``, which must pass at least one test;
- ``save=name.py``: the block is written under that name into the directory of every block of
  the same document (so later blocks and commands can import or run it);
- ``template=NAME``: a template kept in :data:`TEMPLATES` instead of an inline one;
- ``mypy-known=TEXT``: mypy errors whose message holds TEXT are known and tolerated: a bug or
  limit outside the document, to fix there; ``why=`` says which (``why=`` is for readers of the
  directive, in any block).

``sh`` blocks are commands, each run or checked for real in the document's directory
(``cwd=checkout``: in the checkout): ``twistd`` runs (on free ports, ``ports=``; in the
foreground with ``-n``, else daemonized with its pidfile and log) until every server accepts a
Socket.IO client (``probe=`` for more), then is stopped; ``pip install`` of the checkout resolves
with ``--dry-run`` and must provide the extras named, and ``pip install NAME`` must name a
package this venv has (what the suite installs); ``python -m pytest`` / ``python -m
twisted.trial`` run; ``python3 -m venv`` is not run (the suite already runs in one).
``given=DEST:SRC`` copies a file or folder of the checkout into the directory first.
``not-run=REASON`` is for commands the suite cannot run (the suite itself, ten-minute
benchmarks): ``check=executable`` checks the program is an executable file, and ``help=COMMAND``
runs COMMAND, whose output must name every ``--option`` the block mentions (comments included).

``typescript`` blocks (Node's side of a comparison) are compiled with ``tsc --strict --noEmit`` against
the npm packages of ``tests/interop`` (socket.io's and socket.io-client's own types).

``html`` blocks (``app=module:setup``, more twistd options in ``twistd=``) are served as a page by
``twistd txrealtime --static``, opened in headless Chromium, whose first ``console.log`` call must
log what ``console=`` (JSON) says. ``nginx`` blocks are checked by :func:`check_nginx` (``balance=any``:
a load balancer without affinity), ``yaml`` blocks (Kubernetes manifests) by :func:`check_kubernetes`.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
VENV_BIN = Path(sys.executable).parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT = 120.0

OPTIONS: dict[str, set[str]] = {
    "python": {"ports", "live", "redis", "redis-cluster", "server", "probe", "test", "save", "template", "prints",
               "mypy-known", "why"},
    "sh": {"cwd", "ports", "redis", "redis-cluster", "given", "probe", "not-run", "check", "help", "why"},
    "html": {"app", "console", "twistd", "why"},
    "nginx": {"balance", "why"},
    "yaml": {"why"},
    "typescript": {"why"},
}


@dataclass
class Block:
    doc: Path
    index: int
    heading: str
    lang: str
    code: str
    line: int
    """Line of the document where the code starts (1-based)."""
    options: dict[str, list[str]] = field(default_factory=dict)
    template: str | None = None
    after: str = ""
    """The paragraph right after the block."""

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"{self.doc.relative_to(ROOT)}:{self.index}:{slug}"

    def option(self, key: str, default: str | None = None) -> str | None:
        values = self.options.get(key)
        return values[-1] if values else default

    def has(self, key: str) -> bool:
        return key in self.options


def parse(doc: Path) -> list[Block]:
    """The fenced blocks of ``doc``, each with its directive and the paragraph after it."""
    lines = doc.read_text().splitlines()
    blocks: list[Block] = []
    heading = doc.name
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        fence = re.match(r"^(`{3,})(\S*)\s*$", line)
        if fence:
            end = i + 1
            while end < len(lines) and lines[end].strip() != fence.group(1):
                end += 1
            if end == len(lines):
                raise ValueError(f"{doc}:{i + 1}: unterminated code block")
            block = Block(doc, len(blocks), heading, fence.group(2), "\n".join(lines[i + 1 : end]) + "\n", i + 2)
            directive(lines, i, block)
            pending = PENDING.get((str(doc.relative_to(ROOT)), block.index))
            if pending is not None and not block.options and block.template is None:
                directive([f"<!-- doc-test: {pending} -->", line], 1, block)
            after: list[str] = []
            for text in lines[end + 1 :]:
                if text.strip() or after:
                    if not text.strip():
                        break
                    after.append(text)
            block.after = " ".join(after)
            blocks.append(block)
            i = end
        i += 1
    return blocks


def directive(lines: list[str], fence: int, block: Block) -> None:
    """Read the ``<!-- doc-test: ... -->`` comment right before the fence at ``lines[fence]``, if any."""
    end = fence - 1
    while end >= 0 and not lines[end].strip():
        end -= 1
    if end < 0 or not lines[end].rstrip().endswith("-->"):
        return
    start = end
    while start >= 0 and not lines[start].lstrip().startswith("<!--"):
        start -= 1
    head = lines[start].strip()
    if not head.startswith("<!-- doc-test"):
        return
    where = f"{block.doc.name}:{start + 1}"
    comment = [line.strip() for line in lines[start : end + 1]]
    comment[0] = comment[0].removeprefix("<!-- doc-test").removeprefix(":")
    comment[-1] = comment[-1].removesuffix("-->")
    body: list[str] = []
    if "program:" in comment:
        cut = comment.index("program:")
        body = lines[start + cut + 1 : end]
        if lines[end].strip() != "-->":
            raise ValueError(f"{where}: a doc-test program ends before a line holding only -->")
        if not any(line.strip() == "{block}" for line in body):
            raise ValueError(f"{where}: a doc-test program needs a line holding only {{block}}")
        block.template = "\n".join(body) + "\n"
        comment = comment[:cut]
    for word in shlex.split(" ".join(comment)):
        key, _, value = word.partition("=")
        if key not in OPTIONS.get(block.lang, set()):
            raise ValueError(f"{where}: unknown doc-test option {key!r} for a {block.lang or 'plain'} block")
        block.options.setdefault(key, []).append(value)


PENDING: dict[tuple[str, int], str] = {}
"""Directives for blocks whose file cannot carry them yet (none now)."""


def all_blocks() -> list[Block]:
    return [block for doc in DOCS for block in parse(doc)]


# -- python programs ----------------------------------------------------------------------------

TEMPLATES = {
    # Serves the block's ``io`` on a free port and prints what its Engine.IO handshake answers a
    # browser page of https://app.example: the advertised settings, CORS and the sticky cookie.
    "handshake": """
{block}

import json as _json
from typing import Any as _Any

import treq as _treq
from twisted.internet.defer import ensureDeferred as _ensureDeferred
from twisted.internet.task import react as _react
from twisted.web.resource import Resource as _Resource
from twisted.web.server import Site as _Site

from txrealtime.web import mount as _mount


async def _handshake(reactor: _Any) -> None:
    root = _Resource()
    _mount(root, "/socket.io/", io.resource())
    port = reactor.listenTCP(0, _Site(root), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/socket.io/?EIO=4&transport=polling"
    origin: dict[bytes | str, bytes | str] = {"Origin": "https://app.example"}
    response = await _treq.get(url, headers=origin, persistent=False)
    settings = _json.loads((await response.text())[1:])
    print("handshake:", {k: settings[k] for k in ("pingInterval", "pingTimeout", "maxPayload", "upgrades")})
    print("allow-origin:", response.headers.getRawHeaders("access-control-allow-origin"))
    cookies = response.headers.getRawHeaders("set-cookie") or []
    print("set-cookie:", [cookie.replace(settings["sid"], "SID") for cookie in cookies])
    io.close()
    await port.stopListening()


_react(lambda reactor: _ensureDeferred(_handshake(reactor)))
""",
}


@dataclass
class Program:
    text: str
    lines: list[int | None]
    """For each line of ``text``, the document line it comes from (``None``: the template)."""


def program(block: Block) -> Program:
    """The block completed by its template, as a program."""
    template = block.template
    if block.has("template"):
        if template is not None:
            raise ValueError(f"{block.id}: template= and an inline template at once")
        template = TEMPLATES[block.option("template") or ""]
    code = block.code.splitlines()
    if template is None:
        return Program(block.code, [block.line + n for n in range(len(code))])
    text: list[str] = []
    origin: list[int | None] = []
    for line in template.strip("\n").splitlines():
        if line.strip() == "{block}":
            indent = line[: len(line) - len(line.lstrip())]
            text += [indent + c if c.strip() else "" for c in code]
            origin += [block.line + n for n in range(len(code))]
        else:
            text.append(line)
            origin.append(None)
    return Program("\n".join(text) + "\n", origin)


def expected_output(block: Block) -> list[str] | None:
    """The lines the paragraph after the block ("It prints `a` then `b`") or ``prints=`` promise."""
    promised = block.options.get("prints")
    if not block.after.startswith("It prints "):
        return promised
    if promised is not None:
        raise ValueError(f"{block.id}: both the prose and prints= say what it prints")
    rest = block.after.removeprefix("It prints ")
    lines = []
    while True:
        match = re.match(r"`([^`]+)`", rest)
        if match is None:
            raise ValueError(f"{block.id}: 'It prints' is not followed by `code`: {block.after!r}")
        lines.append(match.group(1))
        rest = rest[match.end() :]
        separator = re.match(r"(?:,? then |, | and |,? and then )(?=`)", rest)
        if separator is None:
            return lines
        rest = rest[separator.end() :]


def save_name(block: Block) -> str:
    name = block.option("save")
    if name:
        return name
    stem = re.sub(r"\W", "_", block.doc.stem).lower()
    prefix = "test_" if block.has("test") else ""
    return f"{prefix}{stem}_block{block.index}.py"


def prepare(block: Block, directory: Path) -> None:
    """Put the files a block relies on in its directory: the document's saved blocks, ``given=``."""
    for other in parse(block.doc):
        if other.lang == "python" and other.has("save") and other.index != block.index:
            (directory / save_name(other)).write_text(other.code)
    for given in block.options.get("given", []):
        dest, _, source = given.partition(":")
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, directory / dest)
        else:
            shutil.copy(origin, directory / dest)


def env() -> dict[str, str]:
    return dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1")


def run(args: list[str], cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def report(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


def substitute(text: str, ports: dict[str, int]) -> str:
    for old, new in ports.items():
        text = re.sub(rf"(?<![\w.]){old}(?!\d)", str(new), text)
    return text


def free_ports(block: Block, key: str = "ports") -> dict[str, int]:
    from tests.servers import free_port

    return {port: free_port() for value in block.options.get(key, []) for port in value.split(",") if port}


def start_redis(block: Block, directory: Path, ports: dict[str, int], stack: ExitStack) -> None:
    """The private Redis (``redis=``) or Redis Cluster (``redis-cluster=``) a block asks for, its ports in
    ``ports``."""
    from tests.servers import RedisCluster, RedisServer

    if block.has("redis"):
        redis = RedisServer(directory)
        stack.callback(redis.stop)
        ports[block.option("redis") or ""] = redis.port
    if block.has("redis-cluster"):
        cluster = RedisCluster(directory)
        stack.callback(cluster.stop_all)
        for written, port in zip((block.option("redis-cluster") or "").split(","), cluster.ports, strict=True):
            ports[written] = port


def run_python(block: Block, directory: Path) -> None:
    from tests.servers import Twistd

    prepare(block, directory)
    with ExitStack() as stack:
        ports = free_ports(block)
        if block.has("live"):
            first = block.options["ports"][0].split(",")[0]
            server = Twistd("--app", block.option("live") or "", "--shutdown-grace", "1")
            stack.callback(server.stop)
            ports[first] = int(server.url.rsplit(":", 1)[1])
        start_redis(block, directory, ports, stack)
        source = substitute(program(block).text, ports)
        script = directory / save_name(block)
        script.write_text(source)
        test = block.option("test")
        if test == "pytest":
            done = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", script.name], directory)
            assert done.returncode == 0 and re.search(r"\b[1-9]\d* passed\b", done.stdout), report(done)
            assert not re.search(r"\b(skipped|xfailed|xpassed)\b", done.stdout.splitlines()[-1]), report(done)
            return
        if test == "trial":
            done = run([sys.executable, "-m", "twisted.trial", script.stem], directory)
            assert done.returncode == 0 and re.search(r"^PASSED \(successes=[1-9]\d*\)$", done.stdout, re.M), report(
                done
            )
            return
        assert test is None, f"test={test}: pytest or trial"
        if block.has("server"):
            with background([sys.executable, str(script)], directory) as process:
                probe = PROBES[block.option("probe") or "socketio"]
                for port in ports.values():
                    probe(f"http://127.0.0.1:{port}", process)
            return
        done = run([sys.executable, str(script)], directory)
        assert done.returncode == 0, report(done)
        expected = expected_output(block)
        if expected is not None:
            assert done.stdout.splitlines() == expected, report(done)


# -- type checking ------------------------------------------------------------------------------

MYPY_CACHE = ROOT / ".mypy_cache" / "doc-tests"


def mypy_config() -> str:
    """One configuration for every block, so that mypy's cache serves them all."""
    modules = sorted({Path(save_name(b)).stem for b in all_blocks() if b.lang == "python"})
    tests = sorted({Path(save_name(b)).stem for b in all_blocks() if b.lang == "python" and b.has("test")})
    return (
        "[mypy]\nstrict = True\n"
        f"untyped_calls_exclude = twisted,autobahn,{','.join(modules)}\n"
        f"cache_dir = {MYPY_CACHE}\n"
        "[mypy-pytest_twisted]\nfollow_untyped_imports = True\n"
        f"[mypy-{','.join(tests)}]\ndisallow_untyped_decorators = False\n"
    )


def mypy_block(block: Block, directory: Path) -> list[str]:
    """``mypy --strict`` on the program (with the document's saved blocks beside it).

    The configuration adds to ``--strict`` only what the project's own needs for the same
    third-party reasons: calls into Twisted and Autobahn, which leave parts of their API
    unannotated, are allowed (``untyped_calls_exclude``; mypy names an inherited trial
    assertion after the test class, so the block's own module is listed too), pytest-twisted
    (no ``py.typed``) is read as it is, and its decorators may wrap test functions in test modules.
    Returns the errors not known through ``mypy-known=``, located in the document.
    """
    prepare(block, directory)
    built = program(block)
    script = directory / save_name(block)
    script.write_text(built.text)
    config = directory / "mypy.ini"
    config.write_text(mypy_config())
    done = run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-error-summary", script.name], directory
    )
    known = block.options.get("mypy-known", [])
    errors = []
    for line in done.stdout.splitlines():
        match = re.match(rf"^{re.escape(script.name)}:(\d+): (error|note): (.*)$", line)
        if match is None:
            errors.append(line)
            continue
        if match.group(2) == "note" or any(text in match.group(3) for text in known):
            continue
        origin = built.lines[int(match.group(1)) - 1]
        where = f"{block.doc.name}:{origin}" if origin is not None else "(doc-test template)"
        errors.append(f"{where}: {match.group(3)}")
    if done.returncode not in (0, 1) or done.stderr.strip():
        errors.append(report(done))
    return errors


# -- processes and probes -----------------------------------------------------------------------


class Background:
    """A child process whose output lines are collected as they come."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"exited ({self.popen.wait()}) before printing {pattern!r}:\n{self.log}")
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"never printed {pattern!r}:\n{self.log}")

    @property
    def log(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(30)


@contextmanager
def background(args: list[str], cwd: Path) -> Iterator[Background]:
    process = Background(args, cwd)
    try:
        yield process
    finally:
        process.stop()


def connect(url: str, process: Background | None = None, timeout: float = 60) -> Any:
    """A python-socketio client connected to ``url``, retried while the server is starting."""
    import socketio

    deadline = time.monotonic() + timeout
    while True:
        client = socketio.Client(reconnection=False)
        try:
            client.connect(url, wait_timeout=10)
            return client
        except socketio.exceptions.ConnectionError:
            if process is not None and process.popen.poll() is not None:
                raise AssertionError(f"the server exited ({process.popen.returncode}):\n{process.log}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # the server is still starting


def probe_socketio(url: str, process: Background | None) -> None:
    client = connect(url, process)
    assert client.connected and client.sid
    client.disconnect()


def probe_readme(url: str, process: Background | None) -> None:
    """The README's server: says hello with ``news``, prints what ``my other event`` brings."""
    assert process is not None
    news: queue.Queue[Any] = queue.Queue()
    import socketio

    client = socketio.Client(reconnection=False)
    client.on("news", news.put)
    deadline = time.monotonic() + 60
    while not client.connected:
        try:
            client.connect(url, wait_timeout=10)
        except socketio.exceptions.ConnectionError:
            assert process.popen.poll() is None and time.monotonic() < deadline, process.log
            time.sleep(0.1)  # the server is still starting
    try:
        assert news.get(timeout=10) == {"hello": "world"}
        client.emit("my other event", {"my": "data"})
        printed = process.wait_for(r".", timeout=10).string
        assert printed == "{'my': 'data'}\n", process.log
    finally:
        client.disconnect()


def probe_engineio(url: str, process: Background | None) -> None:
    """A bare Engine.IO echo server: a message comes back."""
    import engineio

    echoed: queue.Queue[Any] = queue.Queue()
    client = engineio.Client()
    client.on("message", echoed.put)
    deadline = time.monotonic() + 60
    while client.state != "connected":
        try:
            client.connect(url, engineio_path="engine.io")
        except engineio.exceptions.ConnectionError:
            assert process is None or process.popen.poll() is None, process.log
            assert time.monotonic() < deadline, "the server never answered"
            time.sleep(0.1)  # the server is still starting
    try:
        client.send("hello")
        assert echoed.get(timeout=10) == "hello"
    finally:
        client.disconnect()


def probe_metrics(url: str, process: Background | None, metrics_url: str | None = None) -> None:
    """A Socket.IO server with metrics: a client connects, then ``/metrics`` counts its session and
    ``/healthz`` says ok (both under ``metrics_url`` when they have a port of their own)."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    probe_socketio(url, process)
    base = metrics_url or url
    scrape = requests.get(base + "/metrics", timeout=10)
    assert scrape.status_code == 200, scrape.text
    opened = sum(
        sample.value
        for family in text_string_to_metric_families(scrape.text)
        for sample in family.samples
        if sample.name == "txrealtime_engineio_sessions_opened_total"
    )
    assert opened >= 1, scrape.text
    health = requests.get(base + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text


PROBES: dict[str, Callable[[str, Background | None], None]] = {
    "socketio": probe_socketio,
    "readme": probe_readme,
    "engineio": probe_engineio,
    "metrics": probe_metrics,
}


def probe_chat_across_nodes(urls: list[str]) -> None:
    """The chat example on two nodes sharing Redis: each sees the other's users."""
    alice, bob = connect(urls[0]), connect(urls[1])
    joined: queue.Queue[Any] = queue.Queue()
    alice.on("user joined", joined.put)
    try:
        assert alice.call("join", "alice", timeout=10) == {"ok": True, "users": 1}
        assert bob.call("join", "bob", timeout=10) == {"ok": True, "users": 2}  # fetch_sockets crossed Redis
        assert joined.get(timeout=10) == {"name": "bob", "users": 2}  # so did the broadcast
    finally:
        alice.disconnect()
        bob.disconnect()


def probe_admin(url: str, cwd: Path, ui: str | None) -> None:
    """docs/operations.md's servers: the admin UI's ``config`` for admin/secret on ``/admin``, and the UI's
    files at ``/admin-ui/`` when ``--admin-ui-static`` serves them."""
    import requests
    import socketio

    configs: queue.Queue[Any] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("config", configs.put, namespace="/admin")
    client.connect(url, namespaces=["/admin"], auth={"username": "admin", "password": "secret"}, wait_timeout=10)
    try:
        assert "AGGREGATED_EVENTS" in configs.get(timeout=10)["supportedFeatures"]
    finally:
        client.disconnect()
    if ui is not None:
        page = requests.get(url + "/admin-ui/", timeout=10)
        assert page.status_code == 200 and page.content == (cwd / ui / "index.html").read_bytes()


# -- shell commands -----------------------------------------------------------------------------


def commands(code: str) -> list[list[str]]:
    """The block's commands: continuation lines joined, comments dropped, split at ``&&``."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            found.append(words[:cut])
            words = words[cut + 1 :]
    return found


def program_path(word: str) -> str:
    """A command's program as this venv has it (``.venv/bin/twistd`` -> this venv's twistd)."""
    name = Path(word).name
    if name in ("python", "python3"):
        return sys.executable
    if (VENV_BIN / name).exists() and (word == name or word.startswith(".venv/")):
        return str(VENV_BIN / name)
    return word


@dataclass
class Node:
    url: str
    args: list[str]
    stop: Callable[[], None]


def run_sh(block: Block, directory: Path) -> None:
    cwd = ROOT if block.option("cwd") == "checkout" else directory
    prepare(block, directory)
    if block.has("not-run"):
        check_not_run(block)
        return
    with ExitStack() as stack:
        ports = free_ports(block)
        start_redis(block, directory, ports, stack)
        nodes: list[Node] = []
        for words in commands(substitute(block.code, ports)):
            program = Path(words[0]).name
            args = words[1:]
            if program == "twistd":
                nodes.append(start_twistd(program_path(words[0]), args, cwd, stack))
            elif program == "pip" and args[:1] == ["install"]:
                check_pip_install(args[1:], cwd)
            elif program in ("python", "python3") and args[:2] == ["-m", "venv"]:
                pass  # not run: the suite already runs in a virtualenv
            elif program in ("python", "python3") and args[:2] in (["-m", "pytest"], ["-m", "twisted.trial"]):
                done = run([sys.executable, *args], cwd)
                assert done.returncode == 0, report(done)
            else:
                raise AssertionError(f"{block.id}: no way to run {shlex.join(words)!r}: add a doc-test directive")
        for node in nodes:
            probe_socketio(node.url, None)
            listen = option_value(node.args, "--metrics-listen")
            if listen is not None:
                probe_metrics(node.url, None, f"http://127.0.0.1:{listen.split(':')[1]}")
            elif "--metrics" in node.args:
                probe_metrics(node.url, None)
            static = option_value(node.args, "--static")
            if static is not None:
                import requests

                page = requests.get(node.url + "/", timeout=10)
                assert page.status_code == 200 and page.content == (cwd / static / "index.html").read_bytes()
        if block.option("probe") == "chat-across-nodes":
            probe_chat_across_nodes([node.url for node in nodes])
        elif block.option("probe") == "admin":
            for node in nodes:
                probe_admin(node.url, cwd, option_value(node.args, "--admin-ui-static"))
        else:
            assert block.option("probe") is None, f"unknown probe {block.option('probe')}"


def option_value(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def start_twistd(program: str, args: list[str], cwd: Path, stack: ExitStack) -> Node:
    """Run a ``twistd`` command line as written, until its site listens."""
    if "-n" in args or "--nodaemon" in args:
        if option_value(args, "--pidfile") is None:
            args = ["--pidfile=", *args]  # no twistd.pid in the checkout: other runs may be going on there
        process = Background([program, *args], cwd)
        stack.callback(process.stop)
        port = process.wait_for(r"Site (?:\(TLS\) )?starting on (\d+)").group(1)
        return Node(f"http://127.0.0.1:{port}", args, process.stop)
    pidfile, logfile = option_value(args, "--pidfile"), option_value(args, "-l") or option_value(args, "--logfile")
    assert pidfile and logfile, "a daemonized twistd needs --pidfile and -l here, to be found and stopped"
    done = run([program, *args], cwd)
    assert done.returncode == 0, report(done)
    deadline = time.monotonic() + 60
    while not (cwd / pidfile).exists():
        assert time.monotonic() < deadline, f"twistd wrote no {pidfile}"
        time.sleep(0.05)  # the daemon is starting
    pid = int((cwd / pidfile).read_text())

    def stop() -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(600):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)  # draining
        os.kill(pid, signal.SIGKILL)

    stack.callback(stop)
    while not (match := re.search(r"Site (?:\(TLS\) )?starting on (\d+)", (cwd / logfile).read_text())):
        assert time.monotonic() < deadline, (cwd / logfile).read_text()
        time.sleep(0.05)  # the daemon is starting
    return Node(f"http://127.0.0.1:{match.group(1)}", args, stop)


def check_pip_install(args: list[str], cwd: Path) -> None:
    """``pip install``: of the checkout, resolved with ``--dry-run``; of anything else, installed here already."""
    for spec in (arg for arg in args if not arg.startswith("-")):
        match = re.fullmatch(r"([^\[\]]+)(?:\[([^\]]*)\])?(.*)", spec)
        assert match is not None, spec
        where, extras = match.group(1), [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
        if where.startswith((".", "/")):
            item = run_dry(spec, cwd)["install"][0]["metadata"]
            assert item["name"] == "txrealtime", item["name"]
            assert set(extras) <= set(item.get("provides_extra", [])), (extras, item.get("provides_extra"))
            requirements = []
            for requirement in item.get("requires_dist", []):
                needed = re.match(
                    r"([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?[^;]*(?:;\s*extra\s*==\s*\"(\w+)\")?$", requirement
                )
                assert needed is not None, requirement
                requirements.append(needed)
            wanted = set(extras)
            while True:  # an extra naming txrealtime's own extras (``all``) brings theirs
                more = {e.strip() for r in requirements if r.group(1) == "txrealtime" and r.group(3) in wanted
                        for e in (r.group(2) or "").split(",")} - wanted
                if not more:
                    break
                wanted |= more
            for needed in requirements:
                if needed.group(3) is None or needed.group(3) in wanted:
                    metadata.version(needed.group(1))  # the suite's venv has what this install brings
        else:
            assert where != "txrealtime", "txrealtime is not on PyPI: install it from a checkout (pip install .)"
            metadata.version(where)


def run_dry(spec: str, cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet", "--report", "-", spec],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, report(done)
    assert "does not provide the extra" not in done.stderr, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def check_not_run(block: Block) -> None:
    """Commands the suite cannot run: the program is there, and knows every option the block names."""
    words = commands(block.code)
    for command in words:
        path = ROOT / command[0]
        if block.option("check") == "executable":
            assert path.is_file() and os.access(path, os.X_OK), f"{command[0]} is not an executable file"
            if path.read_text().startswith("#!/usr/bin/env bash"):
                done = run(["bash", "-n", str(path)], ROOT)
                assert done.returncode == 0, report(done)
    helper = block.option("help")
    if helper is not None:
        done = run([program_path(w) for w in shlex.split(helper)], ROOT)
        assert done.returncode == 0, report(done)
        for option in set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", block.code)):
            assert re.search(rf"(?<![\w-]){option}(?![\w-])", done.stdout), f"{option} is not in `{helper}`"
    assert block.option("check") or helper, f"{block.id}: not-run needs check=executable or help=COMMAND"


# -- typescript, html and nginx -------------------------------------------------------------------


def run_typescript(block: Block, directory: Path) -> None:
    """Compile the block with ``tsc --strict`` against the npm packages the interop tests use."""
    from tests.servers import NODE_MODULES, node

    (directory / "node_modules").symlink_to(NODE_MODULES)
    (directory / "block.ts").write_text(block.code)
    done = subprocess.run(
        [node(), str(NODE_MODULES / "typescript" / "bin" / "tsc"), "--noEmit", "--strict", "--target", "es2020",
         "--module", "commonjs", "--moduleResolution", "node", "--esModuleInterop", "--skipLibCheck", "block.ts"],
        cwd=directory, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 0, report(done)


def run_html(block: Block, directory: Path) -> None:
    """Serve the page with twistd and the ``app=`` hook; its first ``console.log`` must log ``console=``."""
    from tests.servers import NODE_MODULES, Twistd, node

    public = directory / "public"
    public.mkdir()
    (public / "index.html").write_text(block.code)
    server = Twistd("--static", str(public), "--app", block.option("app") or "", "--shutdown-grace", "1",
                    *shlex.split(block.option("twistd") or ""))
    try:
        done = subprocess.run(
            [node(), str(Path(__file__).parent / "docs_page.js"), server.url],
            env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    finally:
        server.stop()
    assert done.returncode == 0, report(done)
    page = json.loads(done.stdout.strip().splitlines()[-1])
    assert page.get("error") is None and page["errors"] == [], page
    assert page["console"] == json.loads(block.option("console") or "null"), page


@dataclass
class Statement:
    name: str
    args: list[str]
    children: list[Statement] | None = None
    """``None`` for a simple directive (``name args;``), the statements inside for a block (``name args { }``)."""

    def find(self, name: str) -> list[Statement]:
        return [child for child in self.children or [] if child.name == name]


def parse_nginx(text: str) -> list[Statement]:
    """nginx's configuration syntax: ``name args;`` and ``name args { ... }``, ``#`` comments, quotes."""
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|[{};]|[^\s{};"\']+', re.sub(r"#[^\n]*", "", text))
    stack: list[list[Statement]] = [[]]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            assert words, "an empty statement"
            stack[-1].append(Statement(words[0], words[1:]))
            words = []
        elif token == "{":
            assert words, "a block without a name"
            children: list[Statement] = []
            stack[-1].append(Statement(words[0], words[1:], children))
            stack.append(children)
            words = []
        elif token == "}":
            assert not words, f"no ; after {' '.join(words)}"
            assert len(stack) > 1, "unbalanced }"
            stack.pop()
        else:
            words.append(token.strip("\"'"))
    assert not words and len(stack) == 1, "unterminated statement or block"
    return stack[0]


def check_nginx(block: Block) -> None:
    """The proxy configuration holds what txrealtime needs: parsed, not run (no nginx in the suite).

    It parses as nginx configuration; its upstream servers are the ports the document's
    ``twistd --listen`` commands use, balanced by client address (``ip_hash``), or with no
    affinity at all with ``balance=any``; the location
    passes to that upstream with the WebSocket upgrade (HTTP/1.1, ``Upgrade`` and ``Connection``
    headers); and it waits longer than a heartbeat round (Engine.IO's ``ping_interval +
    ping_timeout``) before cutting a quiet connection.
    """
    from txrealtime.engineio import EngineIOOptions

    config = Statement("main", [], parse_nginx(block.code))
    (upstream,) = config.find("upstream")
    affinity = [d.name for d in upstream.children or [] if d.name in ("ip_hash", "hash", "sticky")]
    if block.options.get("balance") == ["any"]:
        assert affinity == [], f"balance=any, yet the upstream has {affinity}"
    else:
        assert [d.args for d in upstream.find("ip_hash")] == [[]], "not sticky"
    listening = sorted(set(re.findall(r"--listen tcp:(\d+)", block.doc.read_text())))
    assert sorted(d.args[0].rsplit(":", 1)[1] for d in upstream.find("server")) == listening
    (server,) = config.find("server")
    (location,) = server.find("location")
    assert [d.args for d in location.find("proxy_pass")] == [[f"http://{upstream.args[0]}"]]
    assert [d.args for d in location.find("proxy_http_version")] == [["1.1"]]
    headers = {d.args[0].lower(): d.args[1:] for d in location.find("proxy_set_header")}
    assert headers["upgrade"] == ["$http_upgrade"] and headers["connection"] == ["upgrade"], headers
    (timeout,) = location.find("proxy_read_timeout")
    options = EngineIOOptions()
    assert float(timeout.args[0].removesuffix("s")) > options.ping_interval + options.ping_timeout, timeout


def check_kubernetes(block: Block) -> None:
    """A Kubernetes manifest: parsed, not applied (no cluster in the suite).

    Every document has ``apiVersion``, ``kind`` and ``metadata.name``; a Service selects pods,
    exposes ports, and keeps no session affinity (``sessionAffinity`` absent or ``None``): with
    forwarding, any node serves any session. A ``livenessProbe``/``readinessProbe`` HTTP path is
    one txrealtime serves (``/healthz``).
    """
    import yaml

    documents = [d for d in yaml.safe_load_all(block.code) if d is not None]
    assert documents, "no manifest"
    for doc in documents:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys() and doc["metadata"].get("name"), doc
        if doc["kind"] == "Service":
            spec = doc["spec"]
            assert spec.get("selector") and spec.get("ports"), spec
            assert spec.get("sessionAffinity", "None") == "None", "the Service is sticky"
        for probe in _find(doc, ("livenessProbe", "readinessProbe")):
            assert probe["httpGet"]["path"] == "/healthz", probe


def _find(value: Any, keys: tuple[str, ...]) -> Iterator[Any]:
    """Every value under one of ``keys``, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys:
                yield item
            yield from _find(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _find(item, keys)
