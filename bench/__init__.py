"""Benchmarks side by side with keepalived and ipvsadm (run as ``python -m bench.<name>``)."""
