"""The Autobahn TestSuite against our WebSocket path, through kosoku (``make test-conformance``)."""
