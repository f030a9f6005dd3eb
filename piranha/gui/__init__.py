"""piranha-gui: the web configuration and monitoring tool (Piranha's screens, on port 3636).

Layout, pure parts first:
  document   lvs.cf as editable sections (key -> value tokens) and back to text, with a line map
  forms      the screens' fields, section <-> form values, loader errors -> fields
  editor     an edit = candidate lvs.cf -> the same loader as ``piranha check`` -> new model
  monitor    lvsd's snapshot + pulse's status + the live IPVS table -> rows for the page
  auth       sessions, CSRF tokens, login rate limiting (clock injected)
  passwd     the password file (salted scrypt) and ``piranha-passwd``
  store      reading lvs.cf, the atomic write with a backup
  reload     Apply: SIGHUP to pulse (else lvsd), optional copy to the backup director
  app        the WSGI application (werkzeug): routing, the auth gate, headers, pages
  cli        ``piranha-gui``: options, the threaded server
"""
