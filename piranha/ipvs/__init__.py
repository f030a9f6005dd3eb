"""The kernel IPVS table: domain types, the backend protocol, the netlink adapter and a fake."""
