"""Flask extensions, created once and bound in :func:`web.create_app`."""

from __future__ import annotations

from flask_wtf.csrf import CSRFProtect

#: CSRF protection on every POST (forms and fetch, via the X-CSRFToken header).
#: Only views authenticated by a signed token instead of a session may be
#: exempted (the RFC 8058 one-click unsubscribe POST sent by mail clients).
csrf = CSRFProtect()
