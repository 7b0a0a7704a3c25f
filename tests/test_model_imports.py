"""Model code imported from several threads at once, as a server does (a job loading its model while /plan traces)."""

from __future__ import annotations

import subprocess
import sys

#: Three threads import what a job's load and a plan's trace import, in a fresh interpreter (this one has them).
RACE = """
import threading
from i2v.models.base import import_model_module
from i2v.models.registry import plugin
errors = []
def run(task):
    try:
        task()
    except Exception as error:
        errors.append(repr(error))
tasks = [lambda: plugin("i2vgenxl").backend_class(), lambda: plugin("wan22").backend_class(),
         lambda: import_model_module("i2v.models.i2vgenxl.architecture")]
threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
print(errors or "ok")
"""


def test_model_modules_import_from_three_threads_at_once():
    """Without one import lock, diffusers' lazy submodules came out half-initialised in 8 of 8 such runs
    ("cannot import name 'AutoencoderKL' from 'diffusers'"), and `/plan` answered 500 during a job's load."""
    done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "ok", done.stdout[-2000:]
