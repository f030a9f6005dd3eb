"""lvsd internals: the engine (config + health -> table), the daemon loop, and its files.

* :mod:`~piranha.lvsd.engine`: :class:`Engine`, everything lvsd decides (clock, kernel and
  process runner injected; driven in-process by the tests).
* :mod:`~piranha.lvsd.planner`: the plan step, pure: (config, health, drains, actual table)
  -> ops, the wanted table and the drains that finish; the engine commits it after applying.
* :mod:`~piranha.lvsd.drains`: the table of operator drains and the control commands.
* :mod:`~piranha.lvsd.apply`: the apply loop, the one place where "already done" kernel
  errors are forgiven; ops rendered as ipvsadm command lines for the log.
* :mod:`~piranha.lvsd.book`: per-server health (and its table) and drain records.
* :mod:`~piranha.lvsd.view`: read-only views: log lines, names, the snapshot's content.
* :mod:`~piranha.lvsd.loop`: selectors loop: report socket, signals, control socket, timer.
* :mod:`~piranha.lvsd.control`: the root-only control socket protocol (drain, enable).
* :mod:`~piranha.lvsd.status`: the JSON status snapshot (built, written atomically, shown).
* :mod:`~piranha.lvsd.statefile`: drains and owned services kept across lvsd restarts
  (:class:`Keeper`: the loop writes it once per turn, when it changed).
"""
