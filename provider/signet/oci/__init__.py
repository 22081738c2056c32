"""Talking to OCI registries: the only code that does.

`client` (resolve, manifests, blobs, pushes) on top of `auth` (challenges, tokens, credentials),
`egress` (which addresses a connection may go to), `dns` (name resolution that a stalling name
server cannot hold up) and `slots` (per-registry concurrency). `media` names the media types.
"""
