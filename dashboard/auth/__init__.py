"""Sign-in, roles, row-level security, signed embedding and the audit log (see README "Access").

* :mod:`.identity` — who is asking: role, scope, where the identity came from.
* :mod:`.settings` — ``AUTH`` and the other access settings, read from the environment.
* :mod:`.users` — the product's own user store (``AUTH=local``); :mod:`.audit` — the audit log.
* :mod:`.gate` — the server-side checks every request passes through.
"""
