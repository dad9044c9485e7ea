"""Prediction passes report on one console line, not one progress bar per TTA pass."""

from __future__ import annotations

import io

from imgclf.evaluation.pass_line import PassLine


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_passes(stream, passes: int = 5, enabled: bool = True) -> str:
    line = PassLine(passes, 200, stream=stream, enabled=enabled)
    for _ in range(passes):
        line.step()
    line.done()
    return stream.getvalue()


def test_a_log_or_pipe_gets_one_line_for_all_passes():
    out = run_passes(io.StringIO())
    assert out.count("\n") == 1 and "\r" not in out
    assert out.startswith("predicting 200 images: pass 5/5 (plain + 4 TTA); ")
    assert out.endswith(" s\n")


def test_a_terminal_sees_the_line_rewritten_in_place():
    out = run_passes(Terminal())
    frames = out.split("\r")[1:]
    assert [frame.split(":")[1].split("(")[0].strip() for frame in frames[:5]] == [
        f"pass {i}/5" for i in range(1, 6)
    ]
    assert out.count("\n") == 1 and out.endswith(" s\n")


def test_other_ranks_and_a_single_pass_print_nothing_or_no_tta():
    assert run_passes(io.StringIO(), enabled=False) == ""
    assert "TTA" not in run_passes(io.StringIO(), passes=1)
