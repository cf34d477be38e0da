"""How every process reaches Temporal: the client connection and its payload codec."""
