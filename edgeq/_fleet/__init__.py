"""Many boards over SSH: run edgeq commands on each board in parallel and gather what they return.

Needs the ``[fleet]`` extra (asyncssh). Nothing here is imported by ``edgeq.runtime`` or ``edgeq.devices``,
so the board-side install stays as lean as before.
"""

from edgeq._fleet.hosts import Host, gather_hosts, parse_host, read_hosts_file
from edgeq._fleet.remote import DEFAULT_REMOTE_EDGEQ, HostOutcome, RemoteCommand, Upload, run_on_hosts
from edgeq._fleet.ssh import SSHSettings, asyncssh_module

__all__ = [
    "Host", "gather_hosts", "parse_host", "read_hosts_file",
    "DEFAULT_REMOTE_EDGEQ", "HostOutcome", "RemoteCommand", "Upload", "run_on_hosts",
    "SSHSettings", "asyncssh_module",
]
