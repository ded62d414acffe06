"""A local NHN Cloud Notification SMS v3.0 provider, over real HTTP, for tests and demos.

Run it with ``python -m carriers.simulator --port 8070``. It speaks the routes
:mod:`carriers.nhn_sms` uses (send, list, single query, templates, categories), validates as the
provider documents, and adds ``/_simulator/*``: ``config`` (knobs, see
:class:`~carriers.simulator.behaviour.Behaviour`), ``ledger`` (NDJSON, one row per accepted
recipient), ``ledger/summary``, ``reset`` and ``health``.

Unlike the real provider, it accepts a reference (``recipientGroupingKey``) only once per
channel: a resubmission is answered as accepted, counted in ``submissions`` and
``duplicate_submissions``, and not sent again. Tests use that count to prove nothing was sent
twice; the real provider would send twice.
"""
