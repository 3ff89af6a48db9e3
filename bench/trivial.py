"""The one-line Flask route every server figure is divided by, run by gunicorn
with the portal's own settings (gunicorn.conf.py: gthread, the same workers)."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "ok"
