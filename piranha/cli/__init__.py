"""Command-line front ends: the ``piranha`` admin CLI and the ipvsadm-compatible tool."""
