"""The Gridline platform runtime shared by every service: settings, bus, rpc, db, cache, contracts."""
