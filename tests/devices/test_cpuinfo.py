"""``/proc/cpuinfo`` parsing beyond the recorded boards."""

from __future__ import annotations

from edgeq.devices import parse_cpuinfo

AMD_AVX2_ONLY = """\
processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD Ryzen 7 5800U with Radeon Graphics
physical id\t: 0
cpu cores\t: 8
flags\t\t: fpu sse sse2 lm sse4_1 sse4_2 avx f16c fma avx2

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD Ryzen 7 5800U with Radeon Graphics
physical id\t: 0
cpu cores\t: 8
flags\t\t: fpu sse sse2 lm sse4_1 sse4_2 avx f16c fma avx2
"""


def test_x86_without_vnni() -> None:
    cpu = parse_cpuinfo(AMD_AVX2_ONLY)
    assert cpu.arch == "x86_64"
    assert cpu.features == ("sse4_2", "avx", "fma", "f16c", "avx2")
    assert (cpu.logical_cores, cpu.physical_cores) == (2, 8)
    assert cpu.cpu_part == "AMD Ryzen 7 5800U with Radeon Graphics"


def test_unknown_arm_part_is_named_by_its_ids() -> None:
    cpu = parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x51\nCPU part\t: 0x805\n")
    assert cpu.cpu_part == "ARM part 0x51:0x805"
    assert cpu.arch == "aarch64"


def test_features_are_those_every_core_has() -> None:
    text = "processor : 0\nFeatures : fp asimd asimddp\n\nprocessor : 1\nFeatures : fp asimd\n"
    assert parse_cpuinfo(text).features == ("asimd",)


def test_armv6_and_nothing() -> None:
    armv6 = ("processor\t: 0\nmodel name\t: ARMv6-compatible processor rev 7 (v6l)\n"
             "Features\t: half thumb fastmult vfp edsp java tls\n")
    assert parse_cpuinfo(armv6).arch == "armv6l"
    empty = parse_cpuinfo(None)
    assert (empty.arch, empty.cpu_part, empty.logical_cores, empty.features) == (None, None, None, ())
