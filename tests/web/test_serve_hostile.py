"""`ganinv serve` against what a hostile run found (issue 23): result folders of killed servers removed on the
next start (and nothing else), a host that cannot be resolved or bound refused in one line before anything loads,
requests carrying NaN or infinity refused before any handler, and client disconnects kept out of the log."""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ganinv.core.errors import GaninvError
from helpers import free_port, run_cli

pytest.importorskip("gradio")


def dead_pid() -> int:
    """The id of a process that has finished (ids are not reused this quickly on Linux)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_result_folders_are_removed_and_nothing_else(tmp_path):
    from ganinv.web.widgets import remove_stale_folders

    dead, alive = dead_pid(), os.getpid()
    stale = tmp_path / f"ganinv-results-{dead}-ab12_x"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "r.png").write_bytes(b"png")
    kept = [tmp_path / f"ganinv-results-{alive}-cd34", tmp_path / "ganinv-results-q1w2e3r4",  # live; old naming
            tmp_path / f"ganinv-results-{dead}", tmp_path / f"other-{dead}-ab12", tmp_path / "upload-hash"]
    for folder in kept:
        folder.mkdir()
    a_file = tmp_path / f"ganinv-results-{dead}-ef56"
    a_file.write_bytes(b"not a folder")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious").write_bytes(b"keep me")
    link = tmp_path / f"ganinv-results-{dead}-gh78"
    link.symlink_to(target)
    assert remove_stale_folders(tmp_path) == [stale]
    assert not stale.exists() and all(f.is_dir() for f in kept) and a_file.is_file()
    assert link.is_symlink() and (target / "precious").read_bytes() == b"keep me"
    assert remove_stale_folders(tmp_path / "missing") == []


def test_a_sigkilled_servers_results_are_removed_by_the_next_start(aegan_run, tmp_path, monkeypatch):
    """A process killed outright with a result written leaves its folder, named with its id (no exit handler runs);
    the next `serve` removes it and says so."""
    from ganinv.web.page import serve

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    killed = subprocess.run([sys.executable, "-c", KILLED_SERVER], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = Path(killed.stdout.strip()).parent
    assert left.parent == tmp_path / "gradio" and left.name.startswith("ganinv-results-") and left.is_dir()
    logs = []
    blocks = serve(aegan_run, host="127.0.0.1", port=free_port(), log=logs.append, block=False)
    try:
        assert not left.exists() and (tmp_path / "gradio").is_dir()
        assert logs[0] == "removed 1 result folder(s) left by servers that were killed", logs
    finally:
        blocks.close()
        blocks.results.remove_all()


# A server's result files written, then the process SIGKILLed: prints the result's path, names its pid.
KILLED_SERVER = """
import os, signal, numpy as np
from ganinv.web.widgets import ResultFiles
path = ResultFiles().write_png(np.zeros((8, 8, 3), np.uint8))
assert os.path.basename(os.path.dirname(path)).split("-")[2] == str(os.getpid())
print(path, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_host_that_cannot_be_resolved_or_bound_gets_one_line(monkeypatch):
    from ganinv.web.page import check_can_listen

    def unresolvable(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(GaninvError, match=r"cannot listen on 127\.0\.0\.1:\d+: Address already in use"):
            check_can_listen("127.0.0.1", busy.getsockname()[1])
    with pytest.raises(GaninvError, match="cannot listen on 192.0.2.1:.*(assign|available)"):  # not this machine's
        check_can_listen("192.0.2.1", free_port())
    check_can_listen("127.0.0.1", free_port())
    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)  # no DNS query from a test
    with pytest.raises(GaninvError, match="--host bogus.invalid: cannot resolve this host name"):
        check_can_listen("bogus.invalid", 7860)


def test_serve_with_a_bogus_host_says_so_in_one_line(aegan_run, monkeypatch, capsys):
    def unresolvable(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    code, out, err = run_cli(monkeypatch, capsys, "serve", aegan_run, "--host", "bogus.invalid", "--port", 7860)
    assert code == 2 and "cannot resolve this host name" in err and "empty port" not in err + out
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_nan_and_infinity_are_refused_before_any_handler(aegan_run, tmp_path):
    from ganinv.inference.model import InversionModel
    from ganinv.web import build_app
    from ganinv.web.widgets import ResultFiles

    blocks = build_app(InversionModel.load(aegan_run), results=ResultFiles(tmp_path / "results"))
    events = {fn.fn.__name__: fn for fn in blocks.fns.values() if fn.fn is not None}
    for value in (float("nan"), float("inf")):
        *cleared, status = events["rec_from_sample"].fn(0, "encoder", value)
        assert cleared == [None] * 5 and "NaN and infinity are refused" in status
        assert "NaN and infinity are refused" in events["do_random"].fn(value, 3)[-1]
    grid, metrics, status = events["do_random"].fn(0, 2)  # finite numbers: answered as before
    assert grid is not None and "PSNR" in metrics and status is None


def test_client_disconnects_leave_nothing_in_the_log_and_refusals_one_line():
    from fastapi import HTTPException
    from starlette.requests import ClientDisconnect

    from ganinv.web.page import ClientDisconnectFilter

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:  # noqa: BLE001 - the record carries it, as uvicorn's does
            return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application\n",
                                     None, sys.exc_info())

    def caused(exc: BaseException, cause: BaseException) -> BaseException:
        exc.__cause__ = cause
        return exc

    keep = ClientDisconnectFilter().filter
    assert not keep(record(ClientDisconnect()))
    assert not keep(record(caused(RuntimeError("wrapped"), ConnectionResetError())))
    assert not keep(record(ExceptionGroup("task group", [BrokenPipeError()])))
    refused = record(caused(RuntimeError("Caught handled exception, but response already started."),
                            HTTPException(404, "Not Found")))
    assert keep(refused) and refused.exc_info is None and refused.getMessage().count("\n") == 0
    assert "404" in refused.getMessage()
    bug = record(ZeroDivisionError("ours"))  # a bug keeps its traceback
    assert keep(bug) and bug.exc_info is not None
    assert keep(logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", None, None))
