"""The classification API's Lambda: one JPEG or PNG in, grocery labels out."""
