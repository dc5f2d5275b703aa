"""The PySide6 leader console. Only this package (and ``app.py``) imports Qt."""
