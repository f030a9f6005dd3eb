"""Health checking of real servers, the core of nanny.

* :mod:`~piranha.health.probe`: one probe = one call (TCP/UDP send/expect, send_program);
  the only module here that does I/O.
* :mod:`~piranha.health.expect`: escape translation and reply matchers (pure).
* :mod:`~piranha.health.tracker`: the UP/DOWN decision, forced modes, weights (pure).
* :mod:`~piranha.health.weights`: slow start, load feedback, load-average parsing (pure).
* :mod:`~piranha.health.report`: the nanny -> lvsd report codec (pure).
"""
