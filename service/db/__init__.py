"""Cases, events, evidence files and camera status in SQLite or PostgreSQL."""
