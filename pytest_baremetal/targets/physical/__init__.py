"""Physical boards: USB-serial console, relay or PDU power, PXE or disk boot, labgrid places.

Imported only when a ``kind: physical`` board is booted. ``schema`` is pure data; the
modules that talk to hardware import pyserial (``pyserial-labgrid``) and labgrid, from the
``pytest-baremetal[lab]`` extra, Linux only.
"""
