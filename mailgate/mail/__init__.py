"""Pure mail logic: bytes and header values in, plain values out; no database."""
