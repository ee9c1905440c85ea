"""Staff identity and scope: who may see and do what, over HTTP and gRPC.

- `roles`: the roles, their permissions, the level of the grid each role's node is at;
- `identity`: `Staff` (a verified person), `Place` (where a thing sits on the grid) and the
  refusals `NotSignedIn` (401) and `Forbidden` (403);
- `tokens`: OIDC/JWT bearer tokens checked against the configured issuer's JWKS;
- `issuer`: the local issuer of the embedded run (a key in the data directory);
- `roster`: the people `gridline staff add` records for the local issuer;
- `http`, `rpc`: the FastAPI dependencies and the gRPC method guard.
"""
