"""The partner REST API under /api/v1/: one router (api/urls.py) over the apps' services.

It sits above the apps whose services it calls (well, connectors, matching, review) and holds
no logic of its own: the plumbing (api/base.py, authentication.py, errors.py) and one module
per group of endpoints. docs/api.md walks through it.
"""
