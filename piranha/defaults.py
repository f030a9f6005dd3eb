"""Default paths and limits the command-line tools show in ``--help``, in a module that imports
nothing: a CLI builds its options from these without loading the modules that use them."""

#: Piranha's lvs.cf
CONFIG = "/etc/sysconfig/ha/lvs.cf"
#: the snapshot lvsd writes for ``piranha status`` and the web tool
LVSD_STATUS = "/var/run/piranha/lvsd.status.json"
#: lvsd's root-only control socket (drain, enable)
LVSD_SOCKET = "/var/run/piranha/lvsd.sock"
#: what ``piranha drain`` waits at most before the entry is removed, seconds
DRAIN_TIMEOUT = 300.0
#: what ``piranha realserver`` changed, for ``--undo``
REALSERVER_STATE = "/var/lib/piranha/realserver.json"
