"""Configuration: static settings from one TOML file and the dataclasses of dynamic settings.

Static settings are frozen dataclasses loaded with tomllib. Dynamic settings
(domains, accounts, addresses, aliases) are described here as values and persisted
by app.store.admin. Nothing here does network I/O."""
