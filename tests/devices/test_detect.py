"""Detection on recorded trees of real boards: board, profile, CPU, memory, OS, camera, live state."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from edgeq.devices import Device, current, detect, profile_for

FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: fixture -> what detection must find
EXPECTED = {
    "rpi3b": dict(profile="rpi3", arch="aarch64", cpu_part="Cortex-A53", cores=4, soc="BCM2837", pi=("3B", 1024),
                  dot=False, fp16=False, threads=4, os_id="debian"),
    "rpi3b-armv7l": dict(profile="rpi3", arch="armv7l", cpu_part="Cortex-A53", cores=4, soc="BCM2837", pi=("3B", 1024),
                         dot=False, fp16=False, threads=4, os_id="raspbian"),
    "rpi4b": dict(profile="rpi4", arch="aarch64", cpu_part="Cortex-A72", cores=4, soc="BCM2711", pi=("4B", 4096),
                  dot=False, fp16=False, threads=4, os_id="debian"),
    "rpi400": dict(profile="rpi4", arch="aarch64", cpu_part="Cortex-A72", cores=4, soc="BCM2711", pi=("400", 4096),
                   dot=False, fp16=False, threads=4, os_id="debian"),
    "cm4": dict(profile="rpi4", arch="aarch64", cpu_part="Cortex-A72", cores=4, soc="BCM2711", pi=("CM4", 8192),
                dot=False, fp16=False, threads=4, os_id="debian"),
    "rpi5": dict(profile="rpi5", arch="aarch64", cpu_part="Cortex-A76", cores=4, soc="BCM2712", pi=("5", 8192),
                 dot=True, fp16=True, threads=4, os_id="debian"),
    "rpi-zero2w": dict(profile="rpi-zero2", arch="aarch64", cpu_part="Cortex-A53", cores=4, soc="RP3A0 (BCM2710A1)",
                       pi=("Zero 2 W", 512), dot=False, fp16=False, threads=4, os_id="debian"),
    "jetson-nano": dict(profile="jetson-nano", arch="aarch64", cpu_part="Cortex-A57", cores=4, soc="Tegra X1 (tegra210)",
                        pi=None, dot=False, fp16=False, threads=4, os_id="ubuntu"),
    "jetson-orin-nano": dict(profile="jetson-orin", arch="aarch64", cpu_part="Cortex-A78AE", cores=6, soc="Orin (tegra234)",
                             pi=None, dot=True, fp16=True, threads=6, os_id="ubuntu"),
    "orangepi5": dict(profile="rk3588", arch="aarch64", cpu_part="Cortex-A55 + Cortex-A76", cores=8, soc="RK3588 / RK3588S",
                      pi=None, dot=True, fp16=True, threads=4, os_id="ubuntu"),
    "x86-laptop": dict(profile="x86_64", arch="x86_64", cpu_part="11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz", cores=8,
                       soc=None, pi=None, dot=True, fp16=False, threads=4, os_id="ubuntu"),
    # captured, not written (see its SOURCE): the VM CI runs on
    "x86-vm": dict(profile="x86_64", arch="x86_64", cpu_part="Intel(R) Xeon(R) Processor", cores=2, soc=None, pi=None,
                   dot=True, fp16=False, threads=2, os_id="debian"),
}


def test_every_fixture_tree_has_expectations_and_says_where_it_came_from() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) == sorted(EXPECTED)
    for board in EXPECTED:
        source = (FIXTURES / board / "SOURCE").read_text()
        assert source.startswith(("Captured by", "Hand-written")), f"{board}/SOURCE must say where the files came from"


@pytest.mark.parametrize("board", sorted(EXPECTED))
def test_detects_recorded_board(board: str, board_root) -> None:  # type: ignore[no-untyped-def]
    want = EXPECTED[board]
    device = detect(board_root(board))
    assert device.profile == want["profile"]
    assert profile_for(device).key == want["profile"]
    assert device.arch == want["arch"]
    assert device.cpu_part == want["cpu_part"]
    assert device.cores == want["cores"]
    assert device.soc == want["soc"]
    assert (device.revision.board_type, device.revision.memory_mb) == want["pi"] if want["pi"] else device.revision is None
    assert device.int8_dot_product is want["dot"]
    assert device.fp16_arithmetic is want["fp16"]
    assert device.recommended_threads == want["threads"]
    assert device.os_id == want["os_id"]
    assert device.memory_mb and device.memory_mb > 300
    assert device.kernel and device.os_name
    json.dumps(device.to_dict())  # JSON-ready


def test_device_dict_fields(board_root) -> None:  # type: ignore[no-untyped-def]
    d = detect(board_root("rpi5")).to_dict()
    assert d["board"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert d["features"] == ["asimd", "asimdrdm", "asimddp", "fphp", "asimdhp"]
    assert d["revision"] == {"code": "d04170", "board_type": "5", "processor": "BCM2712", "memory_mb": 8192,
                             "manufacturer": "Sony UK", "board_revision": "1.0", "new_style": True}
    assert d["os"] == {"name": "Debian GNU/Linux 12 (bookworm)", "id": "debian", "release": "12", "kernel": "6.6.51+rpt-rpi-2712"}
    assert set(d["camera"]) == {"picamera2", "video_devices", "present"}
    assert "root" not in d


def test_captured_tree_against_its_own_files(board_root) -> None:  # type: ignore[no-untyped-def]
    """The captured VM: every figure detection gives, read out of the captured files here with plain parsing."""
    root = board_root("x86-vm")
    cpuinfo = (root / "proc/cpuinfo").read_text()
    processors = re.findall(r"^processor\s*:", cpuinfo, re.MULTILINE)
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE).group(1).strip()
    flags = set(re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.MULTILINE).group(1).split())
    mem_kib = int(re.search(r"^MemTotal:\s*(\d+) kB", (root / "proc/meminfo").read_text(), re.MULTILINE).group(1))
    pretty = re.search(r'^PRETTY_NAME="(.*)"$', (root / "etc/os-release").read_text(), re.MULTILINE).group(1)
    device = detect(root)
    assert (device.cores, device.cpu_part) == (len(processors), model)
    assert device.int8_dot_product is bool(flags & {"avx512_vnni", "avx_vnni"})
    assert abs(device.memory_mb - mem_kib / 1024) <= 1
    assert device.os_name == pretty and device.kernel == (root / "proc/sys/kernel/osrelease").read_text().strip()
    assert "Captured by tests/devices/capture_tree.py" in (root / "SOURCE").read_text()


def test_x86_laptop_board_name_and_physical_cores(board_root) -> None:  # type: ignore[no-untyped-def]
    device = detect(board_root("x86-laptop"))
    assert device.board == "Dell Inc. XPS 13 9310"
    assert (device.cores, device.physical_cores) == (8, 4)
    assert {"avx2", "avx512_vnni"} <= set(device.features)


def test_camera_nodes_skip_codecs_isps_and_metadata(board_root) -> None:  # type: ignore[no-untyped-def]
    assert detect(board_root("rpi4b")).camera.video_devices == ("/dev/video0 (unicam-image)",)
    assert detect(board_root("rpi5")).camera.video_devices == ()  # decoder and ISP nodes only
    assert detect(board_root("x86-laptop")).camera.video_devices == ("/dev/video0 (Integrated_Webcam_HD: Integrate)",)


@pytest.mark.parametrize(
    "board, temp, cur, mx, governor",
    [
        ("rpi4b", 61.8, 1800, 1800, "ondemand"),
        ("rpi5", 57.2, 1500, 2400, "ondemand"),
        ("jetson-nano", 39.5, 1479, 1479, "schedutil"),  # the CPU-therm zone, not zone0 (AO-therm)
        ("x86-laptop", 52.0, 1235, 4800, "powersave"),  # TCPU, the CPU sensor
    ],
)
def test_live_state_from_sysfs(board: str, temp: float, cur: int, mx: int, governor: str, board_root) -> None:  # type: ignore[no-untyped-def]
    live = detect(board_root(board)).live()
    assert (live.temperature_c, live.freq_cur_mhz, live.freq_max_mhz, live.governor) == (temp, cur, mx, governor)
    assert live.mem_available_mb and live.mem_available_mb > 100
    assert live.throttled is None  # vcgencmd runs only for the real system
    json.dumps(live.to_dict())


def test_empty_tree_is_all_unknown_never_a_crash(tmp_path: Path) -> None:
    device = detect(tmp_path)
    assert device.profile == "generic"
    assert (device.board, device.arch, device.cpu_part, device.cores, device.memory_mb, device.os_name) == (None,) * 6
    assert device.recommended_threads == 1
    live = device.live()
    assert (live.temperature_c, live.freq_cur_mhz, live.governor, live.mem_available_mb) == (None,) * 4


def test_garbage_files_are_unknown(tmp_path: Path) -> None:
    for rel, raw in {"proc/cpuinfo": b"\xff\xfe not cpuinfo", "proc/meminfo": b"MemTotal: lots",
                     "sys/class/thermal/thermal_zone0/temp": b"hot",
                     "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": b"fast"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(raw)
    device = detect(tmp_path)
    assert (device.memory_mb, device.cores) == (None, None)
    assert (device.live().temperature_c, device.live().freq_cur_mhz) == (None, None)


def test_pi_without_device_tree_falls_back_to_the_revision_code(board_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "pi4"
    shutil.copytree(board_root("rpi4b"), root)
    (root / "proc/device-tree/model").unlink()
    cpuinfo = root / "proc/cpuinfo"
    cpuinfo.write_text("".join(line + "\n" for line in cpuinfo.read_text().splitlines() if not line.startswith("Model")))
    device = detect(root)
    assert device.board == "Raspberry Pi 4B"
    assert device.profile == "rpi4"


def test_32bit_python_on_64bit_kernel_is_armv7l(board_root) -> None:  # type: ignore[no-untyped-def]
    device = detect(board_root("rpi4b"), machine="armv7l")
    assert (device.arch, device.profile) == ("armv7l", "rpi4")
    assert profile_for(device).runtime["armv7l"].package == "tflite-runtime"


def test_current_is_detected_once() -> None:
    device = current()
    assert isinstance(device, Device)
    assert current() is device
    assert device.recommended_threads >= 1
    assert device.python.count(".") == 2


def test_the_runtime_thread_default_is_the_detected_one():
    from edgeq.devices._threads import recommended_threads

    assert recommended_threads() == current().recommended_threads


@pytest.mark.parametrize("board", sorted(EXPECTED))
@pytest.mark.parametrize("machine", [None, "armv7l"])
def test_the_fast_thread_default_picks_the_detected_board(board: str, machine, board_root) -> None:  # type: ignore[no-untyped-def]
    from edgeq.devices._match import best, builtin_rules
    from edgeq.devices._threads import identify, recommended_threads

    root = str(board_root(board))
    device = detect(root, machine=machine)
    _, _, name, arch = identify(root, machine)
    assert (name, arch) == (device.board, device.arch)
    assert best(builtin_rules(), name, arch).key == device.profile  # the same board, not only the same count
    assert recommended_threads(root, machine) == device.recommended_threads
    if machine is None:
        assert device.recommended_threads == EXPECTED[board]["threads"]


def test_the_board_rules_are_the_profiles_fields_in_the_profiles_order():
    from edgeq.devices import load_profiles
    from edgeq.devices._match import builtin_rules

    assert [(r.key, r.model, r.arch, r.recommended_threads) for r in builtin_rules()] == [
        (p.key, p.match_model, p.match_arch, p.recommended_threads) for p in load_profiles().values()]
