"""``vmferry serve`` serves the console: on the address given (port 0: a free one, printed), with the
operator token made in the state directory (0600) and printed; reads answer, a write without the token is
refused; SIGTERM stops it all."""

from __future__ import annotations

import re
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.workflows.conftest import REPO, _dies_with_us, _env


def test_serve_serves_the_console_with_its_token(tmp_path):
    state = tmp_path / "state"
    log = tmp_path / "serve.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "vmferry", "serve", "--state-dir", str(state), "--listen",
                                 "127.0.0.1:0"], stderr=sink, stdout=subprocess.DEVNULL, cwd=REPO,
                                env=_env({"VMFERRY_CONSOLE_TOKEN": "", "VMFERRY_TEMPORAL": ""}),
                                preexec_fn=_dies_with_us)
    try:
        deadline = time.monotonic() + 60
        while "operator token" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        text = log.read_text()
        url = re.search(r"console (http://127\.0\.0\.1:\d+/)", text).group(1)
        token_file = state / "console.token"
        token = token_file.read_text().strip()
        assert f"operator token {token} (from {token_file})" in text
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        with urllib.request.urlopen(url, timeout=10) as res:
            assert res.status == 200 and b"No protected application" in res.read()
        with urllib.request.urlopen(url + "runs", timeout=10) as res:
            assert b"No runs yet" in res.read()          # the console reads the serve's own Temporal
        post = urllib.request.Request(url + "apps/shop/test", data=b"confirm=yes", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=10)
        assert refused.value.code == 401
        post.add_header("Authorization", f"Bearer {token}")
        with pytest.raises(urllib.error.HTTPError) as unknown:
            urllib.request.urlopen(post, timeout=10)
        assert unknown.value.code == 400 and b"not protected" in unknown.value.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_serve_refuses_a_bad_console_address(tmp_path):
    res = subprocess.run([sys.executable, "-m", "vmferry", "serve", "--state-dir", str(tmp_path), "--listen", "8470"],
                         capture_output=True, text=True, cwd=REPO, env=_env(None), timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "HOST:PORT" in res.stderr
