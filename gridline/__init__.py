"""The platform runtime every service shares: settings, bus, rpc, db, cache and contracts."""
