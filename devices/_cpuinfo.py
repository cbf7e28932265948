"""Parsing ``/proc/cpuinfo`` of ARM and x86 Linux: core names, counts, ML-relevant features."""

from __future__ import annotations

import re

from edgeq._frozen import Frozen

#: (implementer, part) from the ``CPU implementer`` / ``CPU part`` lines -> core name
CPU_PARTS: dict[tuple[int, int], str] = {
    (0x41, 0xB76): "ARM1176",
    (0x41, 0xC07): "Cortex-A7",
    (0x41, 0xC09): "Cortex-A9",
    (0x41, 0xC0F): "Cortex-A15",
    (0x41, 0xD03): "Cortex-A53",
    (0x41, 0xD04): "Cortex-A35",
    (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD07): "Cortex-A57",
    (0x41, 0xD08): "Cortex-A72",
    (0x41, 0xD09): "Cortex-A73",
    (0x41, 0xD0A): "Cortex-A75",
    (0x41, 0xD0B): "Cortex-A76",
    (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD0D): "Cortex-A77",
    (0x41, 0xD40): "Neoverse-V1",
    (0x41, 0xD41): "Cortex-A78",
    (0x41, 0xD42): "Cortex-A78AE",
    (0x41, 0xD44): "Cortex-X1",
    (0x41, 0xD46): "Cortex-A510",
    (0x41, 0xD47): "Cortex-A710",
    (0x41, 0xD48): "Cortex-X2",
    (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4B): "Cortex-A78C",
    (0x41, 0xD4F): "Neoverse-V2",
    (0x41, 0xD80): "Cortex-A520",
    (0x41, 0xD81): "Cortex-A720",
    (0x4E, 0x004): "NVIDIA Carmel",
}

#: the CPU features that matter for TFLite kernels, in the order they are reported
ML_FEATURES: tuple[str, ...] = (
    # 32-bit ARM
    "neon", "vfpv4",
    # 64-bit ARM: SIMD, int8 dot product, int8 matrix multiply, fp16 arithmetic, bf16, SVE
    "asimd", "asimdrdm", "asimddp", "i8mm", "fphp", "asimdhp", "bf16", "sve", "sve2", "sme",
    # x86
    "sse4_2", "avx", "fma", "f16c", "avx2", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "amx_int8",
)

_ARCH_IN_MODEL_NAME = re.compile(r"\((v\d+l)\)")


class CpuInfo(Frozen):
    """What ``/proc/cpuinfo`` says, reduced to what edgeq uses.

    Args:
        arch: the architecture the kernel reports (``aarch64``, ``armv7l``, ``x86_64``), if known.
        parts: the core name of each processor, in processor order (ARM ``CPU part`` or x86 ``model name``).
        features: the ML-relevant flags among :data:`ML_FEATURES` that every processor lists.
        logical_cores: the number of processor entries.
        physical_cores: the number of physical cores (x86 ``cpu cores`` x sockets; ARM: one per entry).
        hardware: the ``Hardware`` line (e.g. ``BCM2835`` on Raspberry Pi kernels).
        revision: the ``Revision`` line (a Raspberry Pi revision code), if any.
        model: the ``Model`` line that Raspberry Pi kernels print, if any.
    """

    _fields = ("arch", "parts", "features", "logical_cores", "physical_cores", "hardware", "revision", "model")
    arch: str | None
    parts: tuple[str, ...]
    features: tuple[str, ...]
    logical_cores: int | None
    physical_cores: int | None
    hardware: str | None
    revision: str | None
    model: str | None

    def __init__(
        self, arch: str | None, parts: tuple[str, ...], features: tuple[str, ...], logical_cores: int | None,
        physical_cores: int | None, hardware: str | None = None, revision: str | None = None,
        model: str | None = None,
    ) -> None:
        self.__dict__.update(
            arch=arch, parts=parts, features=features, logical_cores=logical_cores, physical_cores=physical_cores,
            hardware=hardware, revision=revision, model=model,
        )

    @property
    def cpu_part(self) -> str | None:
        """The distinct core names joined by ``" + "`` (``"Cortex-A55 + Cortex-A76"``), or ``None``."""
        distinct = list(dict.fromkeys(self.parts))
        return " + ".join(distinct) if distinct else None


def parse_cpuinfo(text: str | None) -> CpuInfo:
    """Parse the text of ``/proc/cpuinfo``; ``None`` or garbage gives a `CpuInfo` of unknowns."""
    blocks = [_block(chunk) for chunk in re.split(r"\n\s*\n", text or "") if chunk.strip()]
    processors = [b for b in blocks if "processor" in b]
    extra: dict[str, str] = {}
    for block in blocks:
        extra.update({k: v for k, v in block.items() if k in ("Hardware", "Revision", "Model")})
    flag_sets = [set((b.get("Features") or b.get("flags") or "").split()) for b in processors]
    common = set.intersection(*flag_sets) if flag_sets else set()
    features = tuple(f for f in ML_FEATURES if f in common)
    return CpuInfo(
        arch=_arch(processors, common),
        parts=tuple(p for p in (_part(b) for b in processors) if p),
        features=features,
        logical_cores=len(processors) or None,
        physical_cores=_physical_cores(processors),
        hardware=extra.get("Hardware"),
        revision=extra.get("Revision"),
        model=extra.get("Model"),
    )


def _block(chunk: str) -> dict[str, str]:
    out = {}
    for line in chunk.splitlines():
        key, found, value = line.partition(":")
        if found:
            out[key.strip()] = value.strip()
    return out


def _part(block: dict[str, str]) -> str | None:
    if "vendor_id" in block:  # x86
        return block.get("model name")
    try:
        implementer, part = int(block["CPU implementer"], 16), int(block["CPU part"], 16)
    except (KeyError, ValueError):
        return None
    return CPU_PARTS.get((implementer, part), f"ARM part {implementer:#04x}:{part:#05x}")


def _arch(processors: list[dict[str, str]], flags: set[str]) -> str | None:
    if not processors:
        return None
    first = processors[0]
    if "vendor_id" in first:
        return "x86_64" if "lm" in flags else "i686"
    if "asimd" in flags:
        return "aarch64"
    found = _ARCH_IN_MODEL_NAME.search(first.get("model name", ""))
    if found:
        return "aarch64" if found.group(1) == "v8l" and "neon" not in flags else f"arm{found.group(1)}"
    return "armv7l" if "neon" in flags else None


def _physical_cores(processors: list[dict[str, str]]) -> int | None:
    if not processors:
        return None
    if "cpu cores" not in processors[0]:
        return len(processors)
    per_socket = {b.get("physical id", "0"): b["cpu cores"] for b in processors if "cpu cores" in b}
    try:
        return sum(int(n) for n in per_socket.values())
    except ValueError:
        return len(processors)
