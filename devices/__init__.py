"""Device detection, board profiles and install checks; never imports TensorFlow or rich.

Typical use::

    from edgeq.devices import current, profile_for, check_mode_fit, get_profile

    device = current()                      # the board edgeq runs on
    profile = profile_for(device)           # what to expect from it
    warnings = check_mode_fit(get_profile("pi4"), "float16")
"""

from edgeq.devices._cpuinfo import CpuInfo, parse_cpuinfo
from edgeq.devices._detect import BackendInfo, CameraInfo, Device, current, detect
from edgeq.devices._display import DisplayProbe, probe_display
from edgeq.devices._doctor import BackendProbe, Check, DoctorReport, Status, run_doctor
from edgeq.devices._live import LiveState, ThrottleState, decode_throttled, read_live
from edgeq.devices._mode_fit import check_mode_fit
from edgeq.devices._opencv import gui_backend, installed_opencv, opencv_fix
from edgeq.devices._profiles import (
    BOARDS_DIR,
    MODES,
    BoardProfile,
    ModeNote,
    RuntimeWheel,
    get_profile,
    known_profiles,
    load_profiles,
    match_profile,
    profile_for,
)
from edgeq.devices._revision import PiRevision, decode_revision

__all__ = [
    # _detect
    "Device",
    "BackendInfo",
    "CameraInfo",
    "current",
    "detect",
    # _live
    "LiveState",
    "ThrottleState",
    "decode_throttled",
    "read_live",
    # _cpuinfo
    "CpuInfo",
    "parse_cpuinfo",
    # _revision
    "PiRevision",
    "decode_revision",
    # _profiles
    "BOARDS_DIR",
    "MODES",
    "BoardProfile",
    "ModeNote",
    "RuntimeWheel",
    "get_profile",
    "known_profiles",
    "load_profiles",
    "match_profile",
    "profile_for",
    # _mode_fit
    "check_mode_fit",
    # _doctor
    "BackendProbe",
    "Check",
    "DoctorReport",
    "Status",
    "run_doctor",
    # _display
    "DisplayProbe",
    "probe_display",
    # _opencv
    "gui_backend",
    "installed_opencv",
    "opencv_fix",
]
