"""`make demo`: the checked steps of the lab (run as ``python -m demo.run``)."""
