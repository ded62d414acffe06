"""Accounts: who may do what, who did what, and money. Tenants, their API keys and sender
numbers, operators (console accounts: passwords, roles, lock-out), the audit log, platform keys,
sign-in throttling, the points ledger and prices, and opt-out lists. May import engine's
runtime modules, carriers/ and metrics/.
"""
