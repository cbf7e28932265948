"""Fixtures of the fleet tests: real local sshd servers (tests/fleet/sshd_lab.py)."""

from fleet.sshd_lab import lab  # noqa: F401
