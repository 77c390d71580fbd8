"""Using txrealtime.testing (and building the twistd service) adds no Twisted DeprecationWarning to a test run.

Runs in a fresh interpreter: in this one, another test may already have imported the modules whose import warns.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parent.parent

SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings

    warnings.simplefilter("always")
    caught = []
    warnings.showwarning = lambda message, category, filename, lineno, *rest: caught.append(
        {"category": category.__name__, "message": str(message), "where": f"{filename}:{lineno}"}
    )

    import treq
    from twisted.internet import task
    from twisted.internet.defer import ensureDeferred

    from txrealtime.service import Options, make_process_service
    from txrealtime.testing import start_server


    async def main(reactor):
        codes = {}
        server = await start_server(lambda s: None)
        client = await server.client()
        codes["connected"] = client.connected
        for path in ("/", "/favicon.ico", "/socket.io/socket.io.js"):
            response = await treq.get(server.url + path)
            await response.content()
            codes[path] = response.code
        await server.stop()
        for static in ([], ["--static", "examples/echo/public"]):
            options = Options()
            options.parseOptions(["--engineio", *static])
            site = make_process_service(options).site
            port = reactor.listenTCP(0, site, interface="127.0.0.1")
            for path in ("/", "/nope.html"):
                response = await treq.get(f"http://127.0.0.1:{port.getHost().port}{path}")
                await response.content()
                codes[" ".join(static) + " " + path] = response.code
            await port.stopListening()
        print(json.dumps({"codes": codes, "warnings": caught}))


    task.react(lambda reactor: ensureDeferred(main(reactor)))
    """
)


def test_testing_and_service_add_no_twisted_deprecation_warnings() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == {
        "connected": True,
        "/": 404,
        "/favicon.ico": 404,
        "/socket.io/socket.io.js": 200,
        " /": 404,
        " /nope.html": 404,
        "--static examples/echo/public /": 200,
        "--static examples/echo/public /nope.html": 404,
    }
    twisted = [w for w in report["warnings"] if "twisted" in w["where"] or "twisted" in w["message"]]
    assert twisted == []
