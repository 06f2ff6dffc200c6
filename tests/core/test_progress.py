"""Progress in a log file: plain lines (a bar cannot redraw there), with the count, the eta and the task's fields."""
import io

from rich.console import Console
from rich.progress import Progress

from ganinv.core.progress import LineProgress, progress


def test_a_log_file_gets_lines_with_count_eta_and_fields():
    log = io.StringIO()
    with progress(True, console=Console(file=log)) as bar:
        assert isinstance(bar, LineProgress)
        bar.every = 0.0  # a line at every update
        task = bar.add_task("gan", total=4, completed=1, info="")
        for _ in range(3):
            bar.update(task, advance=1, info="d_loss 0.5000")
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("gan  2/4 (50%)") and "eta" in lines[0] and lines[0].endswith("d_loss 0.5000")
    assert lines[-1].startswith("gan  4/4 (100%)")  # and a last line when the work ends


def test_a_terminal_gets_the_bar_and_disabled_stays_silent():
    assert isinstance(progress(True, console=Console(file=io.StringIO(), force_terminal=True)), Progress)
    log = io.StringIO()
    with progress(False, console=Console(file=log)) as bar:
        bar.update(bar.add_task("x", total=2), advance=2)
    assert log.getvalue() == ""
