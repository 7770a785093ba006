"""The official SDK against a real server: the basic round trip."""

from twilio.rest import Client


def test_ip_record_round_trip(sub_client: Client) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="10.1.2.3", cidr_prefix_length=24)
    assert record.sid.startswith("IL")
    assert record.cidr_prefix_length == 24
    fetched = sub_client.voice.v1.ip_records(record.sid).fetch()
    assert fetched.ip_address == "10.1.2.3"
    assert fetched.date_created == record.date_created
    assert [r.sid for r in sub_client.voice.v1.ip_records.list()] == [record.sid]
