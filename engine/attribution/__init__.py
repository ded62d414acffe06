"""Attribution: what a send earned. Orders, tracked links and their clicks, last-touch revenue
attribution. May import engine's runtime modules, engine.accounts, engine.lifecycle, carriers/ and
metrics/.
"""
