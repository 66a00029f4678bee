"""Meter I/O: Modbus buses, meter profiles as data, block-read planning, relay writes."""
