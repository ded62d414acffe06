"""Accounts: who may do what, and money. Tenants, their API keys and sender numbers, platform
keys, sign-in throttling, the points ledger and prices, and opt-out lists. May import engine's
runtime modules, carriers/ and metrics/.
"""
