"""Repository-wide pytest set-up: the suites in suites/ and the plugin's tests in tests/.

The plugin itself is loaded through its pytest11 entry point (pip install -e .).
"""

pytest_plugins = ["pytester"]
