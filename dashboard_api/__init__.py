"""The dashboard API for Diskominfo engineers (FastAPI, API keys with roles)."""
