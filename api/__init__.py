"""The HTTP API: Flask app factory, blueprints, auth and error mapping."""
