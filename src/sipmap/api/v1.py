"""Voice v1 handlers: /v1/IpRecords and /v1/SourceIpMappings."""

from __future__ import annotations

from . import render
from .call import Call, Reply
from .params import PREFIX_RULE


async def create_ip_record(call: Call) -> Reply:
    form = await call.form()
    record = await call.service.voice.create_ip_record(
        call.account_sid,
        form.text("IpAddress"),
        form.integer("CidrPrefixLength", PREFIX_RULE),
        form.text("FriendlyName"),
    )
    return Reply(201, render.ip_record(record, call.base_url))


async def list_ip_records(call: Call) -> Reply:
    page = await call.service.voice.list_ip_records(call.account_sid, call.page_request())
    return Reply(
        200,
        render.v1_list(
            "ip_records",
            page,
            lambda r: render.ip_record(r, call.base_url),
            lambda r: r.sid,
            f"{call.base_url}/v1/IpRecords",
        ),
    )


async def fetch_ip_record(call: Call) -> Reply:
    record = await call.service.voice.get_ip_record(call.account_sid, call.arg("Sid"))
    return Reply(200, render.ip_record(record, call.base_url))


async def update_ip_record(call: Call) -> Reply:
    form = await call.form()
    record = await call.service.voice.update_ip_record(
        call.account_sid, call.arg("Sid"), form.text("FriendlyName")
    )
    return Reply(200, render.ip_record(record, call.base_url))


async def delete_ip_record(call: Call) -> Reply:
    await call.service.voice.delete_ip_record(call.account_sid, call.arg("Sid"))
    return Reply(204)


async def create_mapping(call: Call) -> Reply:
    form = await call.form()
    mapping = await call.service.voice.create_mapping(
        call.account_sid, form.text("IpRecordSid"), form.text("SipDomainSid")
    )
    return Reply(201, render.source_ip_mapping(mapping, call.base_url))


async def list_mappings(call: Call) -> Reply:
    page = await call.service.voice.list_mappings(call.account_sid, call.page_request())
    return Reply(
        200,
        render.v1_list(
            "source_ip_mappings",
            page,
            lambda m: render.source_ip_mapping(m, call.base_url),
            lambda m: m.sid,
            f"{call.base_url}/v1/SourceIpMappings",
        ),
    )


async def fetch_mapping(call: Call) -> Reply:
    mapping = await call.service.voice.get_mapping(call.account_sid, call.arg("Sid"))
    return Reply(200, render.source_ip_mapping(mapping, call.base_url))


async def update_mapping(call: Call) -> Reply:
    form = await call.form()
    mapping = await call.service.voice.update_mapping(
        call.account_sid, call.arg("Sid"), form.text("SipDomainSid")
    )
    return Reply(200, render.source_ip_mapping(mapping, call.base_url))


async def delete_mapping(call: Call) -> Reply:
    await call.service.voice.delete_mapping(call.account_sid, call.arg("Sid"))
    return Reply(204)


ROUTES = {
    "/v1/IpRecords": {"GET": list_ip_records, "POST": create_ip_record},
    "/v1/IpRecords/{Sid}": {
        "GET": fetch_ip_record,
        "POST": update_ip_record,
        "DELETE": delete_ip_record,
    },
    "/v1/SourceIpMappings": {"GET": list_mappings, "POST": create_mapping},
    "/v1/SourceIpMappings/{Sid}": {
        "GET": fetch_mapping,
        "POST": update_mapping,
        "DELETE": delete_mapping,
    },
}
