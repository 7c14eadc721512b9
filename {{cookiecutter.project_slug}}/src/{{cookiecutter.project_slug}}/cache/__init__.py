"""Cache backends for fastapi-cache2, one module per backend."""
