"""WSGI entry point: ``gunicorn wsgi:server`` (each worker builds its app and warms it up)."""
from dashboard.app import create_app, warm_up

server = create_app().server
warm_up(server)
