"""Status callbacks to upstream apps: where a tenant's callbacks may go, and how they are signed.

Owns: the rules for a callback URL (`engine.callbacks.urls`: https only, and never at balsong
itself or an internal address unless allowed) and the signature every callback carries
(`engine.callbacks.signing`: ``Balsong-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``, with
two secrets valid during a rotation). A tenant's default URL and secrets live on its row
(`engine.callbacks.settings`).

Imports: the standard library and psycopg only.
"""
