"""The `gridline` command: run the platform, feed it a demo, manage its contracts.

It stands above the services and the runtime: it may import both, neither imports it
(tests/test_layers.py), and it changes a service's data only through that service's API or a
module the service exports for it (`services/intake/integrator_admin.py`,
`services/<name>/ledger.py`).
"""
