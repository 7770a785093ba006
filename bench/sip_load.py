"""The SIP benchmark's load and meters: SIPp runs at a fixed rate, a one-request probe,
server CPU time from /proc, and the kernel's count of drops at the server's UDP socket."""

from __future__ import annotations

import csv
import re
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import synthetic

SCENARIOS = Path(__file__).parent / "sip"
SIPP_TRANSPORTS = {"udp": "u1", "tcp": "t1"}
# SIPp's own socket buffer: big, so that any loss measured is the server's.
SIPP_BUFFER = 4 * 1024 * 1024


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes (all their threads), in seconds."""
    return synthetic.cpu_seconds(*pids)


def udp_drops(host: str, port: int) -> int:
    """Datagrams the kernel dropped at the UDP socket bound to host:port (its receive
    buffer was full: the server fell behind), since the socket was opened."""
    wanted = f"{socket.htonl(int.from_bytes(socket.inet_aton(host), 'big')):08X}:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted:
            return int(fields[-1])
    raise OSError(f"no UDP socket bound to {host}:{port}")


def udp_receive_buffer(host: str, port: int) -> int | None:
    """The receive buffer (bytes) of the UDP socket bound to host:port, as `ss` reports it."""
    try:
        out = subprocess.run(
            ["ss", "-u", "-l", "-n", "-m", f"src {host}:{port}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    found = re.search(r"\brb(\d+)", out)
    return int(found.group(1)) if found else None


def sipp_command(
    *,
    scenario: str,
    target: tuple[str, int],
    source: str,
    local_port: int,
    control_port: int,
    transport: str,
    rate: int,
    calls: int,
    stats_file: Path,
    recv_timeout_ms: int = 2000,
    uri_hosts: Path | None = None,
) -> list[str]:
    """SIPp sending `calls` calls of `scenario` (a name in bench/sip, or a file) at `rate`
    per second from `source`; with `uri_hosts`, an injection file whose first field
    (`[field0]`) the scenario uses.

    No retransmissions (-nr): a request or response lost is a failed call (timeout),
    not hidden by a resend.
    """
    host, port = target
    return [
        "sipp", f"{host}:{port}",
        "-sf", scenario if scenario.endswith(".xml") else str(SCENARIOS / f"{scenario}.xml"),
        "-i", source, "-p", str(local_port), "-cp", str(control_port),
        "-t", SIPP_TRANSPORTS[transport],
        "-r", str(rate), "-rp", "1000", "-m", str(calls),
        "-nr", "-recv_timeout", str(recv_timeout_ms),
        "-buff_size", str(SIPP_BUFFER),
        "-trace_stat", "-stf", str(stats_file), "-fd", "1",
        "-nostdin",
        *(["-inf", str(uri_hosts)] if uri_hosts is not None else []),
    ]  # fmt: skip


@dataclass(frozen=True)
class SippResult:
    sent: int  # calls started
    answered: int  # calls that got the expected final response
    failed: int
    timeouts: int  # failed for a response that never came
    unexpected: int  # failed for another response than the expected one
    # SIPp's calls per second over the whole run: lower than the rate asked for when
    # SIPp could not keep up, or when the run waited for answers that never came.
    rate: float

    @property
    def lost(self) -> int:
        return self.sent - self.answered


def parse_stats(path: Path) -> SippResult:
    """The cumulative counters of the last line of SIPp's -trace_stat CSV."""
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter=";") if row]
    if len(rows) < 2:
        raise ValueError(f"{path}: no statistics written")
    last = dict(zip(rows[0], rows[-1], strict=False))

    def count(name: str) -> int:
        return int(last.get(f"{name}(C)", "0") or 0)

    return SippResult(
        sent=count("OutgoingCall"),
        answered=count("SuccessfulCall"),
        failed=count("FailedCall"),
        timeouts=count("FailedTimeoutOnRecv") + count("FailedMaxUDPRetrans"),
        unexpected=count("FailedUnexpectedMessage"),
        rate=float(last["CallRate(C)"]),
    )


def run_sipp(command: list[str], stats_file: Path, timeout: float) -> SippResult:
    """Run SIPp to the end. It exits 1 when some calls failed, which is a result here;
    no statistics at all is an error."""
    try:
        done = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:  # run() has killed it
        raise RuntimeError(f"sipp did not finish within {timeout:.0f} s") from None
    try:
        return parse_stats(stats_file)
    except (OSError, ValueError, KeyError) as error:
        message = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"sipp exited {done.returncode}: {message or error}") from None


def probe(target: tuple[str, int], source: str, method: str = "OPTIONS") -> list[str]:
    """Status lines of what answers one request sent over UDP from `source`, in order."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(1.0)
        port = sock.getsockname()[1]
        call_id = uuid.uuid4().hex
        request = (
            f"{method} sip:{target[0]}:{target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{call_id[:16]};rport\r\n"
            f"From: <sip:probe@{source}>;tag={call_id[:8]}\r\n"
            f"To: <sip:{target[0]}:{target[1]}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), target)
        answers = []
        try:
            while True:
                data = sock.recv(65535)
                answers.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
                if not answers[-1].startswith("SIP/2.0 1"):
                    break
        except TimeoutError:
            pass
        return answers
