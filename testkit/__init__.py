"""The project's test doubles, in one place: clocks, resolvers, process runners, IPVS backends
and table generators, and the builders of the lvsd engine tests. Imported by tests and
benchmarks (pytest puts the repository root on ``sys.path``); never by the product."""
