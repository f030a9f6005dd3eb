"""``piranha-ipvsadm``: ipvsadm 1.31 reproduced byte for byte, over piranha's IPVS backends.

``main`` (entry point) -> ``args`` (popt reproduction: ``popt``, ``optvals``, ``values``,
``commands``, ``usage``) -> ``ops`` (commands to backend ops) or the listings (``format``,
``rules`` for ``-S``, ``sort``, ``conn``, ``jsonout``); ``restore`` is ``-R``.
"""
