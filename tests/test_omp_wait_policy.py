"""`import imgclf` makes torch's CPU threads sleep while they wait (OMP_WAIT_POLICY=PASSIVE)
unless the user chose a policy: spinning threads collapse under CPU contention."""

import os
import subprocess
import sys

SHOW = "import imgclf, os; print(os.environ['OMP_WAIT_POLICY'])"


def policy_after_import(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    result = subprocess.run(
        [sys.executable, "-c", SHOW], env={**clean, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_passive_by_default():
    assert policy_after_import() == "PASSIVE"


def test_the_users_choice_wins():
    assert policy_after_import(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
