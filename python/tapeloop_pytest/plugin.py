"""The `tapeloop_serve` fixture: `tapeloop serve` on a free loopback port for one test.

The server is the real binary (`$TAPELOOP_BIN`, else `tapeloop` on PATH), started with
`--listen 127.0.0.1:0`; its address is read from the line it prints on stderr. The SDK
variables point at it for the test (pytest's monkeypatch restores them). At teardown it is
stopped with SIGINT (a graceful shutdown) and, unless `strict=False`, the test fails when a
recorded interaction was never requested.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import urllib.parse
import urllib.request

import pytest

_ADDR = re.compile(r"on http://(127\.0\.0\.1:\d+)")
_START_TIMEOUT_S = 30


def _binary():
    path = os.environ.get("TAPELOOP_BIN") or shutil.which("tapeloop")
    if not path:
        raise RuntimeError(
            "tapeloop_serve: no tapeloop binary: set TAPELOOP_BIN or put `tapeloop` on PATH "
            "(cargo install --path . in the tapeloop repository)"
        )
    return path


class TapeloopServer:
    """A running `tapeloop serve`."""

    def __init__(self, proc, addr, stderr_lines):
        self._proc = proc
        self._stderr = stderr_lines
        self.base_url = f"http://{addr}"
        self.openai_base_url = f"{self.base_url}/v1"

    def _get(self, path):
        with urllib.request.urlopen(self.base_url + path, timeout=10) as r:
            return r.read().decode("utf-8")

    @property
    def requests(self):
        """The requests served so far: one dict per request (the server's request log)."""
        return [json.loads(line) for line in self._get("/_tapeloop/requests").splitlines() if line.strip()]

    @property
    def status(self):
        """The server's status: cassettes (with the interactions never played) and sessions."""
        return json.loads(self._get("/_tapeloop/status"))

    def reset(self, session=None):
        """Rewind every session (or one) so the recording replays from the start."""
        url = self.base_url + "/_tapeloop/reset"
        if session is not None:
            url += "?" + urllib.parse.urlencode({"session": session})
        req = urllib.request.Request(url, data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode("utf-8") or "null")

    def unused(self):
        """`(cassette, [interaction ids])` for every cassette with interactions never played."""
        return [(c["path"], c["unused"]) for c in self.status["cassettes"] if c["unused"]]

    def stop(self):
        """Stop the server gracefully (SIGINT), or kill it after 10 s."""
        if self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    @property
    def stderr(self):
        return "".join(self._stderr)


def start_server(path, *, match="conversation", retry_after_scale=None, pace="instant", extra_args=()):
    """Start `tapeloop serve` for `path` on a free loopback port and wait until it listens."""
    args = [_binary(), "serve", str(path), "--listen", "127.0.0.1:0", "--pace", pace, "--match", match]
    if retry_after_scale is not None:
        args += ["--retry-after-scale", str(retry_after_scale)]
    args += list(extra_args)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    found = threading.Event()
    addr = []

    def pump():
        for line in proc.stderr:
            lines.append(line)
            m = _ADDR.search(line)
            if m and not found.is_set():
                addr.append(m.group(1))
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    if not found.wait(_START_TIMEOUT_S) or not addr:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"tapeloop serve did not start: {''.join(lines).strip() or 'no output'}")
    return TapeloopServer(proc, addr[0], lines)


@pytest.fixture
def tapeloop_serve(monkeypatch):
    """Factory: `server = tapeloop_serve("recordings/x.jsonl")` (see the module docs)."""
    started = []

    def factory(path, *, strict=True, **kwargs):
        server = start_server(path, **kwargs)
        started.append((server, strict))
        env = {
            "TAPELOOP_BASE_URL": server.base_url,
            "OPENAI_BASE_URL": server.openai_base_url,
            "OPENAI_API_KEY": "sk-tapeloop-test",
            "ANTHROPIC_BASE_URL": server.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-tapeloop-test",
            "GOOGLE_GEMINI_BASE_URL": server.base_url,
            "GEMINI_API_KEY": "tapeloop-test",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return server

    yield factory
    problems = []
    for server, strict in started:
        unused = server.unused() if strict and server._proc.poll() is None else []
        server.stop()
        for cassette, ids in unused:
            problems.append(f"{cassette}: interaction(s) {ids} were recorded but never requested")
    if problems:
        pytest.fail(
            "tapeloop_serve (strict): " + "; ".join(problems) + " (pass strict=False to allow this)",
            pytrace=False,
        )
