"""The recipient and job lifecycle: what a recipient or a job is, and what it may become.

Owns the statuses (`engine.lifecycle.statuses`), defined once as enums. Imports nothing of
balsong's but the standard library, so every layer (engine, api, actors, scheduler, cli) may
read the statuses from here.
"""
