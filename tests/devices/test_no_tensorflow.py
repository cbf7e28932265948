"""``edgeq.devices`` works with TensorFlow blocked, and imports neither TensorFlow nor rich."""

from __future__ import annotations

import subprocess
import sys

import edgeq.devices

SCRIPT = """
import sys
sys.modules["tensorflow"] = None  # any "import tensorflow" now raises ImportError
import edgeq.devices
assert "rich" not in sys.modules, "edgeq.devices must not import rich"
assert "numpy" not in sys.modules, "import edgeq.devices must stay light"
device = edgeq.devices.current()
profile = edgeq.devices.profile_for(device)
edgeq.devices.check_mode_fit(profile, "int8")
device.live()
report = edgeq.devices.run_doctor(device)
assert sys.modules["tensorflow"] is None and "keras" not in sys.modules
assert "rich" not in sys.modules
print(device.profile, len(report.checks))
"""


def test_devices_work_with_tensorflow_blocked() -> None:
    # the doctor's convert check imports TensorFlow in a child process: seconds, more on a busy machine
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    _profile, checks = done.stdout.split()
    assert checks == "9"


def test_all_matches_the_public_namespace() -> None:
    for name in edgeq.devices.__all__:
        getattr(edgeq.devices, name)  # names resolve on first use
    public = {name for name in vars(edgeq.devices) if not name.startswith("_")}
    assert set(edgeq.devices.__all__) == public
    assert len(edgeq.devices.__all__) == len(set(edgeq.devices.__all__))
