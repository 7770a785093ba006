"""End to end with SIPp: provision through the API with the official SDK, then real SIP
from loopback sources over UDP and TCP (each SIPp scenario checks the response with
regexp actions; SIPp exits non-zero when any check or expectation fails).

Sources: 127.0.0.2 mapped and inside the ACL; 127.0.0.3 unmapped; 127.0.0.4 mapped but
outside the ACL; 127.0.0.5 mapped to a domain with no ACL. The upstream (a second SIPp,
as UAS) is 127.0.0.9.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sipmap.testing import RunningServer, free_sip_port, sipmap_server, twilio_client

from .peer import require_sipp

SCENARIOS = Path(__file__).parent / "scenarios"
ALLOWED, UNMAPPED, OUTSIDE, NO_ACL, UPSTREAM = (
    "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.9",
)  # fmt: skip
NOT_IN_ACL = r"^ *32201 Authentication failure - source IP Address not in ACL$"
_names = count()


@pytest.fixture(scope="module", autouse=True)
def _sipp() -> None:
    require_sipp()


@dataclass
class Provisioned:
    server: RunningServer
    client: Any
    domain: Any
    mappings: dict[str, Any]


def provision(server: RunningServer) -> Provisioned:
    client = twilio_client(server)
    n = next(_names)
    domain = client.sip.domains.create(domain_name=f"acme{n}.sip.twilio.com")
    acl = client.sip.ip_access_control_lists.create(friendly_name="pbx")
    acl.ip_addresses.create(friendly_name="pbx", ip_address=ALLOWED, cidr_prefix_length=32)
    client.sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings.create(
        ip_access_control_list_sid=acl.sid
    )
    bare = client.sip.domains.create(domain_name=f"noacl{n}.sip.twilio.com")
    mappings = {}
    for ip, target in ((ALLOWED, domain), (OUTSIDE, domain), (NO_ACL, bare)):
        record = client.voice.v1.ip_records.create(ip_address=ip, cidr_prefix_length=32)
        mappings[ip] = client.voice.v1.source_ip_mappings.create(
            ip_record_sid=record.sid, sip_domain_sid=target.sid
        )
    return Provisioned(server, client, domain, mappings)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioned]:
    with sipmap_server(tmp_path_factory.mktemp("edge") / "db.sqlite") as server:
        yield provision(server)


def sipp(scenario: Path, source: str, port: int, transport: str, cwd: Path,
         *extra: str, wait: bool = True) -> subprocess.Popen[str]:  # fmt: skip
    """SIPp running `scenario` once from `source` against 127.0.0.1:`port`; ports ephemeral."""
    command = [
        "sipp", "-sf", str(scenario), "-i", source, "-p", str(free_sip_port(source)),
        "-t", "t1" if transport == "tcp" else "u1", "-m", "1", "-nostdin",
        "-cp", str(free_sip_port()), "-mp", str(free_sip_port(source)),
        "-timeout", "20s", "-timeout_error", "-trace_msg", "-trace_err", *extra,
    ]  # fmt: skip
    if port:
        command.append(f"127.0.0.1:{port}")
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    return process


def finish(text: str) -> str:
    """SIPp refuses variables assigned and never used: the regexp checks' ones are."""
    found = re.findall(r'assign_to="([\w,]+)"', text)
    names = sorted({name for names in found for name in names.split(",")})
    used = f'  <Reference variables="{",".join(names)}"/>\n' if names else ""
    return text.replace("</scenario>", used + "</scenario>")


def check(process: subprocess.Popen[str], cwd: Path) -> None:
    _, stderr = process.communicate(timeout=60)
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(cwd.rglob("*.log")))
    assert process.returncode == 0, f"sipp exited {process.returncode}: {stderr}\n{logs}"


def request_scenario(tmp: Path, source: str, method: str, host: str, status: int,
                     checks: str = "") -> Path:  # fmt: skip
    text = (SCENARIOS / "request.xml").read_text()
    ack = ""
    if method == "INVITE":  # the ACK of a final non-2xx answer, which the edge never answers
        ack = """  <send><![CDATA[

      ACK sip:+15550001@HOST SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-1];rport
      From: <sip:probe@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <timewait milliseconds="300"/>"""
    text = text.replace("ACK\n", ack + "\n").replace("CHECKS", checks)
    text = (
        text.replace("SOURCE", re.escape(source))
        .replace("METHOD", method)
        .replace("HOST", host)
        .replace("STATUS", str(status))
    )
    path = tmp / f"{method}-{status}.xml"
    path.write_text(finish(text))
    return path


def no_header(name: str) -> str:
    return f'      <ereg regexp="{name}:" search_in="msg" check_it_inverse="true" assign_to="no"/>'


def header(name: str, regexp: str) -> str:
    return (f'      <ereg regexp="{regexp}" search_in="hdr" header="{name}:" check_it="true" '
            'assign_to="h"/>')  # fmt: skip


CASES = [
    # (source, method, request-uri host, expected status, checks)
    (ALLOWED, "OPTIONS", "127.0.0.1", 200, no_header("X-Twilio-Error")),
    (ALLOWED, "OPTIONS", "anything.example.com", 200, ""),  # rule 2 whatever the host
    (UNMAPPED, "INVITE", "127.0.0.1", 403, no_header("X-Twilio-Error")),
    (UNMAPPED, "OPTIONS", "127.0.0.1", 403, no_header("X-Twilio-Error")),
    (UNMAPPED, "INVITE", "nobody.example.com", 404, no_header("X-Twilio-Error")),
    (OUTSIDE, "INVITE", "127.0.0.1", 403, header("X-Twilio-Error", NOT_IN_ACL)),
    (NO_ACL, "INVITE", "127.0.0.1", 403, header("X-Twilio-Error", NOT_IN_ACL)),
    (NO_ACL, "OPTIONS", "127.0.0.1", 403, header("X-Twilio-Error", NOT_IN_ACL)),
]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize(("source", "method", "host", "status", "checks"), CASES)
def test_answers(edge: Provisioned, tmp_path: Path, transport: str, source: str, method: str,
                 host: str, status: int, checks: str) -> None:  # fmt: skip
    port = edge.server.sip_port
    scenario = request_scenario(tmp_path, source, method, f"{host}:{port}", status, checks)
    check(sipp(scenario, source, port, transport, tmp_path), tmp_path)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_accepted_invite_without_upstream_is_100_then_480(
    edge: Provisioned, tmp_path: Path, transport: str
) -> None:
    port = edge.server.sip_port
    scenario = request_scenario(tmp_path, ALLOWED, "INVITE", f"127.0.0.1:{port}", 480)
    text = scenario.read_text().replace(
        '<recv response="480"', '<recv response="100"/>\n  <recv response="480"'
    )
    scenario.write_text(finish(text))
    check(sipp(scenario, ALLOWED, port, transport, tmp_path), tmp_path)


def test_deleted_mapping_is_403_at_once(tmp_path: Path) -> None:
    with sipmap_server(tmp_path / "db.sqlite") as server:
        setup = provision(server)
        port = server.sip_port
        ok = request_scenario(tmp_path, ALLOWED, "OPTIONS", f"127.0.0.1:{port}", 200)
        check(sipp(ok, ALLOWED, port, "udp", tmp_path), tmp_path)
        setup.client.voice.v1.source_ip_mappings(setup.mappings[ALLOWED].sid).delete()
        forbidden = request_scenario(tmp_path, ALLOWED, "OPTIONS", f"127.0.0.1:{port}", 403,
                                     no_header("X-Twilio-Error"))  # fmt: skip
        check(sipp(forbidden, ALLOWED, port, "udp", tmp_path), tmp_path)


@pytest.mark.parametrize(
    ("transport", "upstream_transport"), [("udp", "udp"), ("tcp", "udp"), ("udp", "tcp")]
)
def test_call_through_the_edge_to_the_upstream(
    tmp_path: Path, transport: str, upstream_transport: str
) -> None:
    call(tmp_path, transport, upstream_transport, "uac_call.xml", "uas_call.xml")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_the_upstream_hangs_up_through_the_edge(tmp_path: Path, transport: str) -> None:
    call(tmp_path, transport, "udp", "uac_hungup.xml", "uas_hangup.xml")


def call(tmp_path: Path, transport: str, upstream_transport: str, uac_file: str,
         uas_file: str) -> None:  # fmt: skip
    """A SIPp caller at 127.0.0.2, through an edge, to a SIPp UAS as the upstream."""
    uas_port = free_sip_port(UPSTREAM)
    upstream = f"{UPSTREAM}:{uas_port}"
    if upstream_transport == "tcp":
        upstream += ";transport=tcp"
    with sipmap_server(tmp_path / "db.sqlite", "--sip-upstream", upstream) as server:
        setup = provision(server)
        edge = f"127.0.0.1:{server.sip_port}"
        uas = (SCENARIOS / uas_file).read_text()
        uas = uas.replace("DOMAIN_RE", re.escape(setup.domain.domain_name)).replace("EDGE", edge)
        uas = uas.replace("SIP/2\\.0/UDP", f"SIP/2\\.0/{upstream_transport.upper()}")
        uas = uas.replace("ACCOUNT_SID", server.account_sid)
        uas = uas.replace("DOMAIN_SID", setup.domain.sid)
        uas = uas.replace("MAPPING_SID", setup.mappings[ALLOWED].sid)
        (tmp_path / "uas").mkdir()
        (tmp_path / "uas" / "uas.xml").write_text(finish(uas))
        uac = (SCENARIOS / uac_file).read_text().replace("EDGE", edge)
        (tmp_path / "uac").mkdir()
        (tmp_path / "uac" / "uac.xml").write_text(finish(uac))
        mode = "t1" if upstream_transport == "tcp" else "u1"
        command = ["sipp", "-sf", "uas.xml", "-i", UPSTREAM, "-p", str(uas_port), "-t", mode,
                   "-m", "1", "-nostdin", "-cp", str(free_sip_port()),
                   "-mp", str(free_sip_port(UPSTREAM)), "-timeout", "20s", "-timeout_error",
                   "-trace_msg", "-trace_err"]  # fmt: skip
        server_side = subprocess.Popen(command, cwd=tmp_path / "uas", stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            caller = sipp(tmp_path / "uac" / "uac.xml", ALLOWED, server.sip_port, transport,
                          tmp_path / "uac")  # fmt: skip
            caller.wait(60)
            server_side.wait(60)
            # Both logs on either failure: the cause is often on the other side.
            check(caller, tmp_path)
            check(server_side, tmp_path)
        finally:
            if server_side.poll() is None:
                server_side.kill()
            server_side.communicate()


def scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics without credentials, parsed by prometheus_client's own parser."""
    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_what_the_edge_did(edge: Provisioned, tmp_path: Path) -> None:
    port = edge.server.sip_port
    before = scrape(edge.server)
    ok = request_scenario(tmp_path, ALLOWED, "OPTIONS", f"127.0.0.1:{port}", 200)
    check(sipp(ok, ALLOWED, port, "udp", tmp_path), tmp_path)
    forbidden = request_scenario(tmp_path, UNMAPPED, "INVITE", f"127.0.0.1:{port}", 403)
    check(sipp(forbidden, UNMAPPED, port, "tcp", tmp_path), tmp_path)
    after = scrape(edge.server)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("sipmap_sip_received_total", method="OPTIONS", transport="udp") == 1
    assert delta("sipmap_sip_received_total", method="INVITE", transport="tcp") == 1
    assert delta("sipmap_sip_received_total", method="ACK", transport="tcp") == 1
    assert delta("sipmap_sip_answered_total", status="200") == 1
    assert delta("sipmap_sip_answered_total", status="403") == 1
    assert delta("sipmap_sip_dropped_total", reason="ack_unrecognized") == 1
    assert delta("sipmap_sip_recognition_seconds_count") == 3


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_cancelled_call_through_the_edge(tmp_path: Path, transport: str) -> None:
    call(tmp_path, transport, "udp", "uac_cancel.xml", "uas_cancel.xml")
