"""bench/bench_sip.py's pure parts: the Kamailio config and address file it generates,
the SIPp command and statistics, the shared source table, and its arguments.

Neither SIPp nor Kamailio runs here (CI does not install them); the SIPp statistics
parsed are files real SIPp 3.6 runs wrote.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import httpx
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bench_sip  # noqa: E402
import sip_kamailio  # noqa: E402
import sip_load  # noqa: E402
import sip_table  # noqa: E402
import sip_writes  # noqa: E402
from sipmap import testing  # noqa: E402
from sipmap.recognize.recognizer import Recognizer  # noqa: E402
from sipmap.store.open import open_store  # noqa: E402

DATA = Path(__file__).parent / "data"
ACCOUNT = "AC" + "0" * 31 + "1"


def config(**overrides: object) -> str:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 45060,
        "address_file": Path("/tmp/k/address.list"),
        "ctl_socket": Path("/tmp/k/ctl.sock"),
        "children": 3,
        "max_subnets": 20_000,
    }
    options.update(overrides)
    return sip_kamailio.kamailio_config(**options)  # type: ignore[arg-type]


def test_kamailio_config_fills_every_placeholder() -> None:
    text = config()
    assert "@" not in text
    assert text.startswith("#!KAMAILIO\n")
    assert "listen=udp:127.0.0.1:45060\n" in text
    assert "listen=tcp:127.0.0.1:45060\n" in text
    assert "children=3\n" in text
    assert 'modparam("ctl", "binrpc", "unix:/tmp/k/ctl.sock")' in text
    assert 'modparam("permissions", "address_file", "/tmp/k/address.list")' in text
    assert 'modparam("permissions", "max_subnets", 20000)' in text


def test_kamailio_config_never_lowers_the_subnet_limit() -> None:
    assert 'modparam("permissions", "max_subnets", 512)' in config(max_subnets=3)


def test_kamailio_config_answers_as_the_edge_does() -> None:
    # Every module a function of the route comes from is loaded, and the route gives
    # 403 to unknown sources, 100 + 480 to INVITE, 200 otherwise, nothing to ACK.
    text = config()
    modules = set(re.findall(r'^loadmodule "(\w+)\.so"$', text, re.M))
    assert modules == {"ctl", "sl", "permissions"}
    route = text[text.index("request_route {") :]
    steps = [
        'method == "ACK"',
        "exit;",
        "!allow_source_address_group()",
        'sl_send_reply("403", "Forbidden")',
        'method == "INVITE"',
        'sl_send_reply("100", "Trying")',
        'sl_send_reply("480", "Temporarily Unavailable")',
        'sl_send_reply("200", "OK")',
    ]
    positions = [route.index(step) for step in steps]
    assert positions == sorted(positions)
    assert route.count("{") == route.count("}")


def test_address_file_has_one_entry_per_line() -> None:
    text = sip_kamailio.address_file_text([(1, "127.0.0.2", 32), (7, "10.1.0.0", 16)])
    assert text == "1 127.0.0.2 32\n7 10.1.0.0 16\n"


def test_children_of_lists_child_processes() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in sip_kamailio.children_of(os.getpid())
        assert os.getpid() not in sip_kamailio.children_of(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_sipp_command_sends_without_retransmissions_from_the_source() -> None:
    command = sip_load.sipp_command(
        scenario="options", target=("127.0.0.1", 45060), source="127.0.0.2",
        local_port=40000, control_port=40001, transport="tcp", rate=8000, calls=40000,
        stats_file=Path("/tmp/s.csv"), recv_timeout_ms=1500,
    )  # fmt: skip
    assert command[:2] == ["sipp", "127.0.0.1:45060"]

    def value(flag: str) -> str:
        return command[command.index(flag) + 1]

    assert Path(value("-sf")) == BENCH / "sip" / "options.xml"
    assert (value("-i"), value("-p"), value("-cp")) == ("127.0.0.2", "40000", "40001")
    assert (value("-t"), value("-r"), value("-m")) == ("t1", "8000", "40000")
    assert value("-recv_timeout") == "1500"
    assert value("-stf") == "/tmp/s.csv"
    assert "-nr" in command and "-trace_stat" in command


@pytest.mark.parametrize("scenario", ["options", "invite"])
def test_the_scenarios_exist_and_expect_the_final_response(scenario: str) -> None:
    text = (BENCH / "sip" / f"{scenario}.xml").read_text()
    final = {"options": "200", "invite": "480"}[scenario]
    assert f'<recv response="{final}" />' in text
    assert text.count("<send>") == {"options": 1, "invite": 2}[scenario]


@pytest.mark.parametrize(
    ("name", "sent", "answered", "timeouts", "unexpected"),
    [
        ("sipp_answered.csv", 4000, 4000, 0, 0),
        ("sipp_lost.csv", 100, 0, 100, 0),
        ("sipp_rejected.csv", 200, 0, 0, 200),
    ],
)
def test_sipp_statistics(
    name: str, sent: int, answered: int, timeouts: int, unexpected: int
) -> None:
    result = sip_load.parse_stats(DATA / name)
    assert (result.sent, result.answered, result.timeouts, result.unexpected) == (
        sent, answered, timeouts, unexpected,
    )  # fmt: skip
    assert result.lost == sent - answered
    assert result.failed == timeouts + unexpected
    assert result.rate > 0


def test_sipp_statistics_without_rows_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text((DATA / "sipp_answered.csv").read_text().splitlines()[0] + "\n")
    with pytest.raises(ValueError, match="no statistics"):
        sip_load.parse_stats(path)


def test_a_sipp_run_without_statistics_or_end_is_an_error(tmp_path: Path) -> None:
    stats = tmp_path / "none.csv"
    failing = [sys.executable, "-c", "import sys; sys.exit('no such scenario')"]
    with pytest.raises(RuntimeError, match=r"exited 1.*no such scenario"):
        sip_load.run_sipp(failing, stats, timeout=30)
    hanging = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(RuntimeError, match="did not finish within"):
        sip_load.run_sipp(hanging, stats, timeout=0.5)


def test_cpu_seconds_counts_this_process() -> None:
    before = sip_load.cpu_seconds([os.getpid()])
    sum(range(3_000_000))
    assert sip_load.cpu_seconds([os.getpid()]) > before


def test_udp_drops_counts_datagrams_a_full_socket_dropped() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert sip_load.udp_drops("127.0.0.1", port) == 0
        for _ in range(50):
            client.sendto(b"x" * 500, ("127.0.0.1", port))
        assert sip_load.udp_drops("127.0.0.1", port) > 0
    with pytest.raises(OSError):
        sip_load.udp_drops("127.0.0.1", port)


def test_udp_receive_buffer_is_the_sockets_own() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 100_000)
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        size = server.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert sip_load.udp_receive_buffer("127.0.0.1", port) == size
    assert sip_load.udp_receive_buffer("127.0.0.1", port) is None


def test_table_keeps_loopback_to_the_bench() -> None:
    table = sip_table.make_table(2000, seed=3)
    assert table.size == 2000 and table.domains == 20
    assert len(set(table.networks)) == len(table.networks)
    entries = table.kamailio_entries()
    assert entries[0] == (sip_table.BENCH_GROUP, sip_table.ALLOWED_SOURCE, 32)
    assert len(entries) == table.size
    for _group, address, prefix_len in entries[1:]:
        network = IPv4Network(f"{address}/{prefix_len}")
        assert not network.overlaps(IPv4Network("127.0.0.0/8"))
    assert {group for group, _, _ in entries[1:]} == set(range(2, 22))
    assert IPv4Address(sip_table.write_source(499)) in IPv4Network("127.1.0.0/16")
    assert len({sip_table.write_source(n) for n in range(500)}) == 500


def test_sqlite_table_recognises_the_bench_source_only(tmp_path: Path) -> None:
    table = sip_table.make_table(300, seed=5)
    db = tmp_path / "bench.db"
    sip_table.build_sqlite(table, db, ACCOUNT, "a-token-of-32-characters-or-more!")
    store = open_store(db)
    recognizer = Recognizer()
    try:
        recognizer.load(store)
    finally:
        asyncio.run(store.close())
    allowed = recognizer.recognize(sip_table.ALLOWED_SOURCE)
    assert allowed.allowed and allowed.sip_domain_sid == sip_table.BENCH_DOMAIN_SID
    assert not recognizer.recognize(sip_table.UNKNOWN_SOURCE).recognized
    # Every synthetic network is mapped (to a domain without an ACL: recognised, refused).
    network, prefix_len = table.networks[-1]
    inside = str(IPv4Address(network + (1 if prefix_len < 32 else 0)))
    result = recognizer.recognize(inside)
    assert result.recognized and not result.allowed


def test_sipmap_writes_map_and_unmap_through_the_api(tmp_path: Path) -> None:
    db = tmp_path / "bench.db"
    sip_table.build_sqlite(
        sip_table.make_table(50), db, ACCOUNT, "a-token-of-32-characters-or-more!"
    )
    with (
        testing.sipmap_server(
            db, sip_port=0, auth_token="a-token-of-32-characters-or-more!"
        ) as server,
        httpx.Client(base_url=server.base_url, auth=(ACCOUNT, server.auth_token)) as http,
    ):
        records = sip_writes.SipmapWrites.create_records(http, 12)
        writes = sip_writes.SipmapWrites(http, records, 0.2)
        writes.start()
        writes.join()
        assert (writes.report.done, writes.report.errors) == (24, 0), writes.report.first_error
        # Every mapping made was removed again: the bench's own is the only one left.
        left = http.get("/v1/SourceIpMappings", params={"PageSize": 1000}).json()
        assert len(left["source_ip_mappings"]) == 50


def test_write_schedule_is_even_and_within_the_span() -> None:
    due = sip_writes.due_times(4, 2.0)
    assert due == [0.0, 0.5, 1.0, 1.5]


def test_arguments_default_to_the_issue_targets() -> None:
    args = bench_sip.build_parser().parse_args([])
    assert args.rates == [2000, 4000, 8000]
    assert args.cases == ["small", "large", "writes"]
    assert args.methods == ["options", "invite"]
    assert (args.large_size, args.writes, args.transport) == (100_000, 1000, "udp")


def test_arguments_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    parse = bench_sip.build_parser().parse_args
    assert parse(["--rates", "500, 1000", "--cases", "WRITES"]).rates == [500, 1000]
    bad_arguments = (
        ["--rates", "fast"], ["--rates", "0"], ["--cases", "huge"], ["--methods", ""],
        ["--rounds", "0"], ["--seconds", "-1"], ["--writes", "many"],
    )  # fmt: skip
    for bad in bad_arguments:
        with pytest.raises(SystemExit):
            parse(bad)
    assert "error:" in capsys.readouterr().err
