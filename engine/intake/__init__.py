"""Intake: a job request becomes a stored job. Validation, normalisation and classification of
recipients (phone numbers, EUC-KR sizes, templates, SMS/LMS), the advertising rules, per-tenant
limits and budgets, reservations, resends, and the one transaction (COPY) that stores a job and its
recipients. May import engine's runtime modules, engine.accounts, engine.attribution (tracked
links), engine.lifecycle (statuses), engine.callbacks (callback URLs, the outbox), carriers/ and
metrics/.
"""
