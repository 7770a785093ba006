"""The HTTP edge: routes, form decoding, JSON rendering, Twilio errors, auth."""
