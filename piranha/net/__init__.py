"""Network edges of the director: VIP announcements (``arp``)."""
