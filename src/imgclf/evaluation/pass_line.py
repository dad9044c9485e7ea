"""One console line for the passes of a prediction (the plain pass and the TTA passes),
instead of a progress bar per pass: rewritten in place on a terminal, printed once at the
end elsewhere (logs, pipes, notebooks)."""

from __future__ import annotations

import sys
import time


class PassLine:
    """`step()` before each of `passes` passes over `images` images; `done()` after."""

    def __init__(self, passes: int, images: int, stream=None, enabled: bool = True) -> None:
        self.passes, self.images, self.enabled = passes, images, enabled
        self.stream = stream if stream is not None else sys.stdout
        self.started = time.perf_counter()
        self.current = 0

    def text(self) -> str:
        tta = f" (plain + {self.passes - 1} TTA)" if self.passes > 1 else ""
        return f"predicting {self.images} images: pass {self.current}/{self.passes}{tta}"

    def step(self) -> None:
        self.current += 1
        if self.enabled and self.stream.isatty():
            self.stream.write(f"\r{self.text()}")
            self.stream.flush()

    def done(self) -> None:
        if not self.enabled:
            return
        seconds = time.perf_counter() - self.started
        start = "\r" if self.stream.isatty() else ""
        self.stream.write(f"{start}{self.text()}; {seconds:.1f} s\n")
        self.stream.flush()
