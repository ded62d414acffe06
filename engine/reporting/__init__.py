"""Reporting: what operators read. The send history, job and recipient views, CSV/XLSX exports
(a job's recipients and orders, a tenant's ledger and opt-out list), the send statement
(HTML/PDF), send statistics (read from the counters `engine.lifecycle.job_stats` writes) and
retention of results. May import engine's runtime modules, engine.lifecycle (statuses,
counters), engine.accounts, engine.attribution, carriers/ and metrics/.
"""
