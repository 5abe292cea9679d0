"""The account web interface under ``/account/``: users log in with an address and
password, change their password, see their addresses, aliases and quota, and get
client settings (manual page and an Apple configuration profile)."""
