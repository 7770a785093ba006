"""sipmap's own endpoint, outside Twilio's namespace: recognition for SIP proxies.

GET /sipmap/v1/Recognition?SourceIp=203.0.113.7&RequestUri=sip:bob@example.com
answers with the recognition result as JSON (fields as CONTRACT §6).
"""

from __future__ import annotations

from .call import Call, Reply


async def recognize(call: Call) -> Reply:
    assert call.principal is not None
    query = call.query()
    result = await call.service.recognition.recognize_for(
        call.principal, query.text("SourceIp"), query.text("RequestUri")
    )
    return Reply(200, result.as_dict())


ROUTES = {"/sipmap/v1/Recognition": {"GET": recognize}}
