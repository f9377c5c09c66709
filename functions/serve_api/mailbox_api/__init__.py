"""The mailbox API's routes by area, request bodies, JSON shapes and HTTP errors."""
