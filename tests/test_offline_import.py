"""`import imgclf` and its modules never open a network connection."""

import subprocess
import sys

GUARD = """
import socket
attempts = []
def refuse(self, address, *args, **kwargs):
    attempts.append(address)
    raise OSError("network blocked by test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
import imgclf, imgclf.data, imgclf.model, imgclf.data.transforms, imgclf.cli
import time
time.sleep(1)  # give any background version check time to try
print(len(attempts), attempts)
"""


def test_importing_imgclf_opens_no_connection():
    env = {"PATH": "/usr/bin:/bin"}  # NO_ALBUMENTATIONS_UPDATE deliberately unset
    result = subprocess.run([sys.executable, "-c", GUARD], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "0 []"
