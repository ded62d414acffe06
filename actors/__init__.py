"""Dramatiq actors, thin: they parse the message, call engine/ and carriers/, and publish what
the engine returns.

Importing this package has no side effect. A process installs the broker explicitly at start
(`actors.broker.install_broker`): the worker in `actors.worker.boot`, which then imports the
actor modules (Dramatiq binds an actor to the broker installed when its module is imported);
the API, the scheduler and the CLI, which only publish (`actors.publish`, by actor name), never
import an actor module.
"""
