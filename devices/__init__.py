"""Device detection, board profiles and install checks; never imports TensorFlow or rich.

Typical use::

    from edgeq.devices import current, profile_for, check_mode_fit, get_profile

    device = current()                      # the board edgeq runs on
    profile = profile_for(device)           # what to expect from it
    warnings = check_mode_fit(get_profile("pi4"), "float16")

Names are resolved on first use, so the runtime's thread default (``recommended_threads``) does not load the
doctor, display and OpenCV probes.
"""

from edgeq._lazy import exports as _exports

#: public name -> module defining it
_EXPORTS: dict[str, str] = {
    "CpuInfo": "edgeq.devices._cpuinfo",
    "parse_cpuinfo": "edgeq.devices._cpuinfo",
    "BackendInfo": "edgeq.devices._detect",
    "CameraInfo": "edgeq.devices._detect",
    "Device": "edgeq.devices._detect",
    "current": "edgeq.devices._detect",
    "detect": "edgeq.devices._detect",
    "DisplayProbe": "edgeq.devices._display",
    "probe_display": "edgeq.devices._display",
    "BackendProbe": "edgeq.devices._doctor",
    "Check": "edgeq.devices._doctor",
    "DoctorReport": "edgeq.devices._doctor",
    "Status": "edgeq.devices._doctor",
    "run_doctor": "edgeq.devices._doctor",
    "LiveState": "edgeq.devices._live",
    "ThrottleState": "edgeq.devices._live",
    "decode_throttled": "edgeq.devices._live",
    "read_live": "edgeq.devices._live",
    "check_mode_fit": "edgeq.devices._mode_fit",
    "gui_backend": "edgeq.devices._opencv",
    "installed_opencv": "edgeq.devices._opencv",
    "opencv_fix": "edgeq.devices._opencv",
    "BOARDS_DIR": "edgeq.devices._profiles",
    "MODES": "edgeq.devices._profiles",
    "BoardProfile": "edgeq.devices._profiles",
    "ModeNote": "edgeq.devices._profiles",
    "RuntimeWheel": "edgeq.devices._profiles",
    "get_profile": "edgeq.devices._profiles",
    "known_profiles": "edgeq.devices._profiles",
    "load_profiles": "edgeq.devices._profiles",
    "match_profile": "edgeq.devices._profiles",
    "profile_for": "edgeq.devices._profiles",
    "PiRevision": "edgeq.devices._revision",
    "decode_revision": "edgeq.devices._revision",
}

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


__getattr__, __dir__ = _exports(__name__, _EXPORTS, __all__)
