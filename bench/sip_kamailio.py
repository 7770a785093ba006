"""Kamailio as the SIP benchmark's reference: its generated config and address file,
and the foreground process (with its worker processes) on a free loopback port."""

from __future__ import annotations

import os
import shutil
import string
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sipmap.testing import stop_process

TEMPLATE = Path(__file__).parent / "sip" / "kamailio.cfg"
# Address-file entry: (group, dotted address, prefix length).
Entry = tuple[int, str, int]


class _CfgTemplate(string.Template):
    # Kamailio's own syntax uses $ (pseudo-variables); placeholders are @{name}.
    delimiter = "@"


def kamailio_config(
    *,
    host: str,
    port: int,
    address_file: Path,
    ctl_socket: Path,
    children: int = 2,
    max_subnets: int = 512,
) -> str:
    """The reference config: allowed sources get 200 (OPTIONS) or 100 + 480 (INVITE),
    everyone else 403, all stateless."""
    return _CfgTemplate(TEMPLATE.read_text()).substitute(
        host=host,
        port=port,
        address_file=address_file,
        ctl_socket=ctl_socket,
        children=children,
        max_subnets=max(512, max_subnets),
    )


def address_file_text(entries: Iterable[Entry]) -> str:
    """The permissions module's address file: `group address prefix-length` per line."""
    return "".join(f"{group} {address} {prefix_len}\n" for group, address, prefix_len in entries)


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`kamailio -c`: Kamailio's own syntax and module check of a config file."""
    return subprocess.run(
        ["kamailio", "-c", "-f", str(path)], capture_output=True, text=True, check=False
    )


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (Kamailio's workers are the main process's children)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; the fields after it may not.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(name))
    return found


@dataclass
class Kamailio:
    """A running Kamailio: `pids` are the main process and its workers."""

    process: subprocess.Popen[bytes]
    workdir: Path
    address_file: Path
    ctl_socket: Path
    log: Path
    pids: list[int] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        workdir: Path,
        entries: Iterable[Entry],
        *,
        host: str,
        port: int,
        children: int,
        ready_timeout: float = 30.0,
    ) -> Kamailio:
        if shutil.which("kamailio") is None:
            raise RuntimeError("kamailio is not installed (apt-get install kamailio)")
        workdir.mkdir(parents=True, exist_ok=True)
        text = address_file_text(entries)
        address_file = workdir / "address.list"
        address_file.write_text(text)
        subnets = sum(1 for line in text.splitlines() if not line.endswith(" 32"))
        ctl_socket = workdir / "ctl.sock"
        cfg = workdir / "kamailio.cfg"
        cfg.write_text(
            kamailio_config(
                host=host,
                port=port,
                address_file=address_file,
                ctl_socket=ctl_socket,
                children=children,
                max_subnets=subnets + 1024,
            )
        )
        checked = check_config(cfg)
        if checked.returncode != 0:
            errors = [ln for ln in checked.stderr.splitlines() if "ERROR" in ln or "CRITICAL" in ln]
            raise RuntimeError(f"kamailio -c rejected {cfg}: {' | '.join(errors[-3:])}")
        log = workdir / "kamailio.log"
        command = [
            "kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(workdir), "-w", str(workdir),
            "-m", "256", "-M", "16",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        server = cls(process, workdir, address_file, ctl_socket, log)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"kamailio exited with {process.returncode}: {server.tail()}")
            # Ready once its control socket answers (every worker has been forked by then).
            if ctl_socket.exists() and server.rpc("core.uptime").returncode == 0:
                server.pids = [process.pid, *children_of(process.pid)]
                return server
            time.sleep(0.1)
        server.stop()
        raise RuntimeError(f"kamailio did not start: {server.tail()}")

    def rpc(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kamcmd", "-s", f"unix:{self.ctl_socket}", command],
            capture_output=True,
            text=True,
            check=False,
        )

    def replace_table(self, text: str) -> None:
        """Write a new address file and have Kamailio reload the whole of it."""
        staged = self.address_file.with_suffix(".new")
        staged.write_text(text)
        os.replace(staged, self.address_file)
        answer = self.rpc("permissions.addressReload")
        if answer.returncode != 0:
            raise RuntimeError(f"addressReload failed: {answer.stdout}{answer.stderr}")

    def tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.process)
