"""The sync server: aiohttp + python-socketio. Never imports Qt."""
