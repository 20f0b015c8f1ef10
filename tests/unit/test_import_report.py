"""What `perfmon import-legacy` writes: a progress line only on a terminal, a summary of counts."""

from __future__ import annotations

import io

from perfmon.domain.legacy_import import ImportReport
from perfmon.entrypoints.import_report import ProgressLine, summary


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_ends_with_the_final_counts_on_a_terminal() -> None:
    terminal = Terminal()
    with ProgressLine(terminal) as progress:
        for samples in (10, 20, 30):
            progress(ImportReport(users_imported=1, sessions_imported=1, samples_imported=samples))

    assert terminal.getvalue().startswith("\rimporting: 1 users, 1 sessions, 10 samples, 0 bad lines")
    assert terminal.getvalue().endswith("\rimporting: 1 users, 1 sessions, 30 samples, 0 bad lines \n")


def test_progress_line_writes_nothing_to_a_pipe_or_file() -> None:
    pipe = io.StringIO()
    with ProgressLine(pipe) as progress:
        progress(ImportReport(users_imported=1))

    assert pipe.getvalue() == ""


def test_summary_has_one_count_per_line() -> None:
    report = ImportReport(
        users_imported=1,
        users_skipped=2,
        sessions_imported=3,
        sessions_skipped=4,
        samples_imported=5,
        bad_lines=6,
    )

    assert summary(report).splitlines() == [
        "users imported: 1",
        "users skipped: 2",
        "sessions imported: 3",
        "sessions skipped: 4",
        "samples imported: 5",
        "bad lines: 6",
    ]
