"""``python -m gateway.admin``: the admin API in the foreground (what ``gateway serve`` starts beside gunicorn)."""
from gateway.admin.server import run_admin_forever
from gateway.config import Settings

run_admin_forever(Settings())
