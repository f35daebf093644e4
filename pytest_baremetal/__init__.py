"""pytest-baremetal: hardware-in-the-loop testing of bare-metal UEFI builds."""

__version__ = "0.1.0"
