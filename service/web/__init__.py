"""The server-rendered web UI (Jinja2 templates, static CSS and vanilla JS) on top of the JSON API."""
