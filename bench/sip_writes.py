"""The writes case: changes to source IP mappings applied while SIPp runs.

sipmap takes them one by one through its API (create a mapping, delete it, and so on:
each write reaches recognition before its response). Kamailio has no per-entry update
for an address file, so each reload rewrites the file with every change due so far and
has Kamailio reload the whole table (`permissions.addressReload`); reloads follow each
other as fast as Kamailio takes them, so changes due during a reload wait for the next.
Both start with the same table and end with it: every mapping added is removed again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from sip_kamailio import Entry, Kamailio, address_file_text
from sip_table import BENCH_DOMAIN_SID, BENCH_GROUP, Table, write_source


@dataclass
class WriteReport:
    done: int = 0
    errors: int = 0
    reloads: int = 0  # Kamailio only
    seconds: float = 0.0
    first_error: str = ""


def due_times(count: int, seconds: float) -> list[float]:
    """When each of `count` changes is due, evenly over `seconds` from the start."""
    return [seconds * i / count for i in range(count)]


class _Paced(threading.Thread):
    def __init__(self, count: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.due = due_times(count, seconds)
        self.report = WriteReport()

    def fail(self, message: str) -> None:
        self.report.errors += 1
        self.report.first_error = self.report.first_error or message


class SipmapWrites(_Paced):
    """Change i: create a mapping of IP record i // 2 if i is even, else delete it.

    The changes are shared among LANES clients (record n goes to lane n % LANES), as
    an API's users would send them: one client alone would wait for every commit.
    """

    LANES = 8

    def __init__(self, http: httpx.Client, records: list[str], seconds: float) -> None:
        super().__init__(2 * len(records), seconds)
        self.http = http
        self.records = records
        self.lock = threading.Lock()

    @staticmethod
    def create_records(http: httpx.Client, count: int) -> list[str]:
        """The IP records the writes map and unmap, made once through the API."""
        sids = []
        for n in range(count):
            answer = http.post("/v1/IpRecords", data={"IpAddress": write_source(n)})
            answer.raise_for_status()
            sids.append(answer.json()["sid"])
        return sids

    def write(self, i: int, mapping: str) -> str:
        """Change i; the SID of the mapping it created, if it created one."""
        try:
            if i % 2 == 0:
                data = {"IpRecordSid": self.records[i // 2], "SipDomainSid": BENCH_DOMAIN_SID}
                answer = self.http.post("/v1/SourceIpMappings", data=data)
            else:
                answer = self.http.delete(f"/v1/SourceIpMappings/{mapping}")
        except httpx.HTTPError as error:
            with self.lock:
                self.fail(repr(error))
            return ""
        with self.lock:
            if answer.is_success:
                self.report.done += 1
            else:
                self.fail(f"{answer.status_code} {answer.text[:120]}")
        return str(answer.json().get("sid", "")) if answer.status_code == 201 else ""

    def lane(self, start: float, lane: int) -> None:
        mapping = ""
        for i, due in enumerate(self.due):
            if (i // 2) % self.LANES == lane:
                time.sleep(max(0.0, start + due - time.perf_counter()))
                mapping = self.write(i, mapping)

    def run(self) -> None:
        start = time.perf_counter()
        lanes = [
            threading.Thread(target=self.lane, args=(start, n), daemon=True)
            for n in range(self.LANES)
        ]
        for thread in lanes:
            thread.start()
        for thread in lanes:
            thread.join()
        self.report.seconds = time.perf_counter() - start


class KamailioWrites(_Paced):
    """The same changes as entries of the address file, applied by whole-table reloads."""

    def __init__(self, kamailio: Kamailio, table: Table, records: int, seconds: float) -> None:
        super().__init__(2 * records, seconds)
        self.kamailio = kamailio
        self.base = address_file_text(table.kamailio_entries())

    def run(self) -> None:
        start = time.perf_counter()
        extra: dict[int, Entry] = {}
        applied = 0
        while applied < len(self.due):
            time.sleep(max(0.0, start + self.due[applied] - time.perf_counter()))
            now = time.perf_counter() - start
            while applied < len(self.due) and self.due[applied] <= now:
                n = applied // 2
                if applied % 2 == 0:
                    extra[n] = (BENCH_GROUP, write_source(n), 32)
                else:
                    extra.pop(n, None)
                applied += 1
            try:
                self.kamailio.replace_table(self.base + address_file_text(extra.values()))
            except (OSError, RuntimeError) as error:
                self.fail(str(error))
                continue
            self.report.reloads += 1
            self.report.done = applied
        self.report.seconds = time.perf_counter() - start
