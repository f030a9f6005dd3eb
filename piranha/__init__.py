"""piranha: a Python re-implementation of Red Hat's Piranha LVS control plane."""

__version__ = "0.1.0"
