"""Constructs of the serving stack: the approved-model pointer, the endpoint, the API."""
