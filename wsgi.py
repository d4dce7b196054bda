"""WSGI entry point: ``gunicorn wsgi:server`` (each worker builds its app and warms it up)."""
import sys

from dashboard.app import create_app, warm_up
from dashboard.auth.settings import AuthConfigError

try:
    server = create_app().server
except AuthConfigError as exc:   # gunicorn.conf.py checks first; this covers other servers
    sys.exit(f"Shopper Insights: {exc}")
warm_up(server)
