"""The SIP edge: message types, a sans-I/O parser, a pure responder, and the asyncio rim."""
