"""PyInstaller runtime hook: PySide6's setup without loading Qt until the app imports it.

PyInstaller's own hook for PySide6 (``pyi_rth_pyside6``, which ``bandsync.spec`` drops)
imports ``PySide6.QtCore`` at start-up to register an embedded ``qt.conf``, so every run,
``--headless`` included, would load Qt. This hook sets the same environment at start-up and
registers ``qt.conf`` right after the app itself first imports ``PySide6.QtCore``; headless
mode never does, and never loads Qt.
"""


def _pyi_rthook() -> None:
    import importlib.abc
    import importlib.machinery
    import os
    import sys

    from _pyi_rth_utils import is_macos_app_bundle, prepend_path_to_environment_variable
    from _pyi_rth_utils import qt as qt_rth_utils

    qt_rth_utils.ensure_single_qt_bindings_package("PySide6")
    meipass = sys._MEIPASS  # type: ignore[attr-defined]
    if sys.platform.startswith("win"):
        qt_path = os.path.join(meipass, "PySide6")
    else:
        qt_path = os.path.join(meipass, "PySide6", "Qt")
    os.environ["QT_PLUGIN_PATH"] = os.path.join(qt_path, "plugins")
    os.environ["QML2_IMPORT_PATH"] = os.path.join(qt_path, "qml")
    if sys.platform.startswith("win"):
        prepend_path_to_environment_variable(meipass, "PATH")
    if sys.platform == "darwin" and not is_macos_app_bundle:
        prepend_path_to_environment_variable(meipass, "DYLD_LIBRARY_PATH")

    class _QtConfAfterQtCore(importlib.abc.MetaPathFinder):
        """Runs PyInstaller's qt.conf step once ``PySide6.QtCore`` has been imported."""

        def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
            if name != "PySide6.QtCore":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return spec
            loader = spec.loader
            exec_module = loader.exec_module

            def exec_then_register(module):  # type: ignore[no-untyped-def]
                exec_module(module)
                qt_rth_utils.create_embedded_qt_conf("PySide6", qt_path)

            loader.exec_module = exec_then_register  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, _QtConfAfterQtCore())


_pyi_rthook()
del _pyi_rthook
