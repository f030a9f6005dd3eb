"""Child processes: a pure restart policy, the supervisor state machine, the OS runner.

* :mod:`~piranha.supervise.policy`: backoff delays and when a failure streak resets (pure).
* :mod:`~piranha.supervise.children`: :class:`Supervisor`, one state machine per child
  (RUNNING, STOPPING, BACKOFF, ...), driven by ``now`` passed in (pure apart from the runner).
* :mod:`~piranha.supervise.runner`: :class:`OsRunner`, the only ``os.fork``/``os.kill`` user.
"""
