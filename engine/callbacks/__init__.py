"""Status callbacks to upstream apps: every status a recipient reaches, pushed to its job's URL.

Owns:
- `urls`: the rules for a callback URL (https only, and never at balsong itself or an internal
  address unless allowed), checked when it is set and before every delivery;
- `signing`: the signature every callback carries (``Balsong-Signature: t=<unix seconds>,
  v1=<hex HMAC-SHA256>``, two secrets valid during a rotation);
- `settings`: a tenant's default URL and secrets, on its row;
- `outbox`: events written in the transaction of the change that made them;
- `payloads`: the JSON a receiver gets, built from outbox rows;
- `dispatcher`: delivery, batched per endpoint, in order, retried with back-off, recorded;
- `delivery_state`: what became of a job's events (the API and console show it), and replay.

Imports: the standard library, psycopg, httpx, orjson, and engine's runtime modules (config,
clock, the phone mask of intake).
"""
