"""What the tests and the benchmarks share: a live gunicorn portal (`live`),
browsers (`browsers`, `firefox`, `drivers`, `a11y`), an HTTP client that speaks
the API (`http`), simulated reporters (`reporters`), sealing as a browser would
(`sealing`), the desk-and-back loop (`loop`), and the app's routes and CSRF
helpers (`web`). Tests import from here and get fixtures from conftest.py;
no test module imports another, and nothing here imports a test module."""
