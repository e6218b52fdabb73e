"""virtnet: build, verify and keep right the virtual networks VMs connect to."""

__version__ = "0.1.0"
