"""`python -m imgclf ...`: the `imgclf` command, for when the virtualenv's bin folder is
not on PATH (and what Lightning re-runs for each DDP process started this way)."""

from imgclf.cli import main

main()
