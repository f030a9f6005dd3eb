"""The namespace lab: namespaces, bridges and veths, directors running pulse and lvsd, real
servers and clients, keepalived as a peer. One library for the demo (``python -m demo.run``),
the benchmarks (``python -m bench.<name>``) and the tests (pytest puts the repository root on
``sys.path``). Traffic stays inside the namespaces it makes or on loopback."""
