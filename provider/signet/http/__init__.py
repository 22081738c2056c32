"""The HTTP edge: the Gatekeeper wire format, the app, serving with TLS, dev certificates."""
