"""sipmap: Twilio-compatible Source IP Mappings."""

__version__ = "0.1.0"
