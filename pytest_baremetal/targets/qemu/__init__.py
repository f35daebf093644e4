"""QEMU targets: argv construction, the process and its QMP link, fallback diagnosis."""
