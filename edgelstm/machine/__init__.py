"""Facts about the machine: CPU ISA class, the device block of reports, doctor's checks."""
